"""Issue 3: one settings table; config file < environment < command line."""
import os
import subprocess
import sys

import pytest

from forkwsgi.settings import SETTINGS, render_markdown

from .conftest import ROOT


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
    again.write_text("\n".join(line for line in printed.splitlines() if not line.startswith("config =")))
    out = effective(cli("-c", str(again), "--print-config"))
    assert out["workers"] == "3  # config file"


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
    assert readme[start:end] == render_markdown(), "run: python -m forkwsgi.settings --update-readme"
