"""Errors shared across modules."""

BOOT_ERROR = 3  # a worker's exit status telling the master the app could not be loaded


class ConfigError(Exception):
    """A setting has an unknown name or a bad value, or the server cannot set itself up."""
