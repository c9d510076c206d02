"""Errors shared across modules."""


class ConfigError(Exception):
    """A setting has an unknown name or a bad value, or the server cannot set itself up."""
