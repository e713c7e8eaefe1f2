"""The errors a job ends with, each a message that names what failed and where.

Bad input is refused before a job starts, as ConfigError, DataError or ModelError; a job that would harm
something is refused as `Refused` (a name another job holds, a folder the project did not make, resumable
work of other settings): exit code 2, nothing written. A JobError comes later (exit code 1), and the run's
`.partial` folder is kept for inspection and resume.
"""


class Refused(RuntimeError):
    """The job cannot start without harming what is there; the message names it and what to do."""


class JobError(RuntimeError):
    pass

