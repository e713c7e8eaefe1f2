"""The error type of the models package."""


class ModelError(ValueError):
    """A model could not be found, built or loaded; the message says what to do instead."""
