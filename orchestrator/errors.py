"""The error of a job that stopped part-way (an actor died, ...): the message names what failed and where.

Bad input is refused before a job starts, as ConfigError, DataError or ModelError (exit code 2); a JobError
comes later (exit code 1), and the run's `.partial` folder is kept for inspection.
"""


class JobError(RuntimeError):
    pass
