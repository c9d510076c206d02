"""One settings table; config file < environment < command line."""
import os
import subprocess
import sys

import pytest

from forkwsgi.config.settings import SETTINGS, render_markdown

from tests.support.server import ROOT


def cli(*args, env=None):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FORKWSGI_")}
    environment.update(env or {}, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "forkwsgi", *args], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=30)


def effective(result):
    """{name: 'value  # source'} from --print-config output."""
    assert result.returncode == 0, result.stderr
    out = {}
    for line in result.stdout.splitlines():
        if not line.startswith("#"):
            name, _, rest = line.partition(" = ")
            out[name] = rest
    return out


def values_and_sources(result):
    """({name: value source text}, {name: source}) of the settings --print-config printed."""
    values, sources = {}, {}
    for name, rest in effective(result).items():
        values[name], _, sources[name] = rest.rpartition("  # ")
    return values, sources


def write_nested_broken_app(root):
    """A package whose app module fails at import time, inside a helper module it imports."""
    package = root / "nestedbroken"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helpers.py").write_text("def load_settings():\n    settings = {}\n"
                                        "    return settings['DATABASES']\n")
    (package / "app.py").write_text("from nestedbroken import helpers\n\nSETTINGS = helpers.load_settings()\n\n\n"
                                    "def app(environ, start_response):\n    pass\n")
    return str(package / "helpers.py")


@pytest.fixture
def conf(tmp_path):
    path = tmp_path / "forkwsgi.conf.py"
    path.write_text("import multiprocessing\n"
                    "workers = 2\nkeepalive = 7\nbind = ['127.0.0.1:9001', 'unix:/tmp/x.sock']\n"
                    "wsgi_app = 'tests.apps:app'\n_helper = 1\n"
                    "def when_ready(arbiter):\n    pass\n")
    return path


def test_precedence_cli_over_env_over_file_over_defaults(conf):
    out = effective(cli("-c", str(conf), "--print-config", "--timeout", "9",
                        env={"FORKWSGI_KEEPALIVE": "3", "FORKWSGI_TIMEOUT": "4"}))
    assert out["workers"] == "2  # config file"
    assert out["keepalive"] == "3.0  # environment"
    assert out["timeout"] == "9  # command line"
    assert out["graceful_timeout"] == "30  # default"
    assert out["bind"] == "['127.0.0.1:9001', 'unix:/tmp/x.sock']  # config file"
    assert out["wsgi_app"] == "'tests.apps:app'  # config file"


def test_boolean_flags_override_the_file_both_ways(tmp_path):
    path = tmp_path / "on.conf.py"
    path.write_text("preload_app = True\nreuse_port = False\n")
    out = effective(cli("-c", str(path), "--print-config", "--no-preload", "--reuse-port"))
    assert out["preload_app"] == "False  # command line" and out["reuse_port"] == "True  # command line"


def test_cmd_args_env_and_config_from_env(conf):
    out = effective(cli("--print-config", env={"FORKWSGI_CMD_ARGS": "-w 5 --keepalive 1",
                                               "FORKWSGI_CONFIG": str(conf)}))
    assert out["workers"] == "5  # environment" and out["keepalive"] == "1.0  # environment"
    assert out["bind"].endswith("# config file")


def test_print_config_output_is_a_loadable_config(tmp_path, conf):
    printed = cli("-c", str(conf), "--print-config", "-w", "3").stdout
    again = tmp_path / "printed.conf.py"
    again.write_text(printed)
    out = effective(cli("-c", str(again), "--print-config"))
    assert out["workers"] == "3  # config file"


def test_print_config_round_trips_every_setting(tmp_path, conf):
    """Printed with -c, environment and flags, loaded back with -c alone: the same effective values."""
    env = {"FORKWSGI_BODY_TIMEOUT": "inf", "FORKWSGI_FORWARDED_ALLOW_IPS": "10.0.0.0/8,::1",
           "FORKWSGI_CMD_ARGS": "--max-requests 100"}
    first = cli("-c", str(conf), "--print-config", "-w", "3", "--umask", "027", "--keepalive", "2.5",
                "--access-logfile", "-", "--access-logformat", "%(h)s 'quoted' \"%(r)s\" \u00e9",
                "--timeout", "7", "--pid", str(tmp_path / "app.pid"), "--name", "it's \"named\"",
                "--preload", "--log-level", "debug", "-b", "unix:/tmp/forkwsgi-rt.sock", env=env)
    values, sources = values_and_sources(first)
    assert values["umask"] == "0o27" and values["body_timeout"] == "float('inf')"
    assert values["accesslog"] == "'-'" and values["user"] == "None"
    assert {"config file", "environment", "command line", "default"} <= set(sources.values())
    assert all(line.startswith("#") for line in first.stdout.splitlines() if line.startswith(("# config", "# when")))
    assert "# when_ready = when_ready (" in first.stdout  # a hook is named, as a comment
    printed = tmp_path / "printed.conf.py"
    printed.write_text(first.stdout)
    again = cli("-c", str(printed), "--print-config")
    reloaded, reloaded_sources = values_and_sources(again)
    expected = {s.name for s in SETTINGS if not s.is_hook and s.name != "config"}
    assert set(values) == expected
    assert reloaded == values
    assert set(reloaded_sources.values()) == {"config file"}
    assert "# config = %r" % str(printed) in again.stdout
    checked = cli("-c", str(printed), "--check-config")
    assert checked.returncode == 0 and "config OK (tests.apps:app)" in checked.stdout, checked.stderr


def test_print_config_of_defaults_loads_back_unchanged(tmp_path):
    first = cli("--print-config")
    printed = tmp_path / "defaults.conf.py"
    printed.write_text(first.stdout)
    assert values_and_sources(cli("-c", str(printed), "--print-config"))[0] == values_and_sources(first)[0]


@pytest.mark.parametrize("content,message", [
    ("wrokers = 4\n", "unknown setting 'wrokers'"),
    ("workers = 'many'\n", "bad value 'many' for workers"),
    ("workers = 0\n", "must be at least 1"),
    ("bind = ['127.0.0.1:http']\n", "bad port"),
    ("def post_fork():\n    pass\n", "must accept 2 positional argument(s)"),
    ("loglevel = 'loud'\n", "expected debug, info"),
    ("1/0\n", "ZeroDivisionError"),
])
def test_bad_config_files_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.conf.py"
    path.write_text(content)
    result = cli("-c", str(path), "--check-config", "tests.apps:app")
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_bad_environment_and_flags():
    typo = cli("--print-config", env={"FORKWSGI_WROKERS": "2"})
    assert typo.returncode == 2 and "FORKWSGI_WROKERS is not a forkwsgi setting" in typo.stderr
    bad = cli("--print-config", env={"FORKWSGI_WORKERS": "x"})
    assert bad.returncode == 2 and "FORKWSGI_WORKERS" in bad.stderr
    flag = cli("--print-config", "--no-such-flag")
    assert flag.returncode == 2 and "--no-such-flag" in flag.stderr


def test_check_config(conf):
    ok = cli("-c", str(conf), "--check-config")
    assert ok.returncode == 0 and "config OK" in ok.stdout
    broken = cli("-c", str(conf), "--check-config", "tests.broken_app:app")
    assert broken.returncode == 1 and "this app cannot start" in broken.stderr


def test_check_config_shows_the_summary_then_the_traceback(tmp_path):
    helpers = write_nested_broken_app(tmp_path)
    result = cli("--chdir", str(tmp_path), "--check-config", "nestedbroken.app:app")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == ("forkwsgi: error: cannot import 'nestedbroken.app:app': KeyError: 'DATABASES' (%s:3)"
                        % helpers), result.stderr
    assert lines[1] == "Traceback (most recent call last):"
    assert '  File "%s", line 3, in load_settings' % helpers in lines
    assert "    return settings['DATABASES']" in lines and lines[-1] == "KeyError: 'DATABASES'"
    assert "<frozen importlib" not in result.stderr


def test_a_module_missing_deep_inside_the_app_names_the_line_that_imported_it(tmp_path):
    """Like a typo in Django's INSTALLED_APPS: not '(<frozen importlib._bootstrap>:1140)'."""
    (tmp_path / "typoapp.py").write_text("import importlib\n\nfor name in ['nosuch_app']:\n"
                                         "    importlib.import_module(name)\n")
    result = cli("--chdir", str(tmp_path), "--check-config", "typoapp:app")
    first = result.stderr.splitlines()[0]
    assert result.returncode == 1 and first == ("forkwsgi: error: cannot import 'typoapp:app': ModuleNotFoundError: "
                                                "No module named 'nosuch_app' (%s:4)" % (tmp_path / "typoapp.py"))
    assert "Traceback (most recent call last):" in result.stderr and "frozen" not in result.stderr
    missing = cli("--chdir", str(tmp_path), "--check-config", "typoap:app")  # the app module itself: one line
    assert missing.returncode == 1 and "no module named 'typoap'" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_every_setting_is_declared_once_and_documented():
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names))
    flags = [f for s in SETTINGS for f in s.flags]
    assert len(flags) == len(set(flags))
    assert all(s.help for s in SETTINGS)


def test_readme_settings_table_is_generated_from_the_table():
    with open(os.path.join(ROOT, "README.md")) as handle:
        readme = handle.read()
    start = readme.index("<!-- settings:start -->\n") + len("<!-- settings:start -->\n")
    end = readme.index("<!-- settings:end -->")
    assert readme[start:end] == render_markdown(), "run: python -m forkwsgi.config.settings --update-readme"


def test_print_config_writes_file_modes_in_octal():
    values, _ = values_and_sources(cli("--print-config", "--control-socket-mode", "640", "-m", "022"))
    assert values["control_socket_mode"] == "0o640" and values["umask"] == "0o22"
