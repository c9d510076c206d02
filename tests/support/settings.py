"""A Config made in-process, for tests of what reads one."""


def make_config(**values):
    """A Config of the defaults plus ``values`` (hooks adapted as at load)."""
    from forkwsgi.config.loader import Config
    from forkwsgi.config.settings import SETTINGS
    merged = {setting.name: setting.default for setting in SETTINGS}
    merged.update(values)
    return Config(merged, {})
