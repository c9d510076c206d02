"""The settings table: one row per setting, each well-formed and documented, assembled from the
settings_* modules of its sections."""
import pytest

from forkwsgi.config import (settings_development, settings_gunicorn, settings_hooks, settings_limits,
                             settings_logging, settings_observability, settings_proxies, settings_server)
from forkwsgi.config.setting import Setting
from forkwsgi.config.settings import BY_NAME, SETTINGS, ignored_warning, render_markdown
from forkwsgi.config.validators import boolean, boolean_on_by_default

SECTIONS = (settings_server, settings_limits, settings_proxies, settings_logging, settings_development,
            settings_observability, settings_gunicorn, settings_hooks)


def test_the_table_is_every_section_row_once_in_section_order():
    rows = [row for module in SECTIONS for row in module.ROWS]
    assert SETTINGS == rows
    assert all(module.ROWS for module in SECTIONS)


def test_names_and_flags_are_unique():
    names = [setting.name for setting in SETTINGS]
    flags = [flag for setting in SETTINGS for flag in setting.flags]
    assert len(names) == len(set(names)) == len(BY_NAME)
    assert len(flags) == len(set(flags))
    assert all(flag.startswith("-") and " " not in flag for flag in flags)


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda setting: setting.name)
def test_each_row_is_well_formed_and_documented(setting):
    assert isinstance(setting, Setting)
    assert setting.name.isidentifier() and setting.name.islower()
    assert setting.help and setting.help == setting.help.strip()
    assert setting.env == "FORKWSGI_" + setting.name.upper()
    assert setting.gunicorn is None or setting.gunicorn == "same" or \
        setting.gunicorn.partition(": ")[0] in ("same", "ignored", "refused") and setting.gunicorn.partition(": ")[2]
    switch = setting.validate in (boolean, boolean_on_by_default)
    if setting.flags and not switch:
        assert setting.metavar, "a flag that takes a value names it in --help"
    if setting.is_hook:
        assert setting.flags == () and setting.default is None


@pytest.mark.parametrize("setting", [s for s in SETTINGS if not s.is_hook], ids=lambda setting: setting.name)
def test_each_default_is_a_value_its_validator_takes_and_keeps(setting):
    value = setting.validate(setting.default)
    assert setting.validate(value) == value
    assert ignored_warning(setting, setting.default) is None


def test_every_setting_has_a_row_in_the_generated_markdown():
    table = render_markdown()
    for setting in SETTINGS:
        assert "| `%s` |" % setting.name in table
    assert "`0o600`" in table  # a mode reads as one
