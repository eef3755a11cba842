"""Settings are checked in one place (config.py): a bad value stops the server or agent with one line
naming it and exit code 2; a misspelt TASK_SYSTEM_ variable is warned about; good values reach the app."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config import DEFAULTS, SettingError, load_config, unknown_variables
from tests.conftest import ROOT, ServerProcess
from tests.helpers import server_events


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any TASK_SYSTEM_ variable, plus `extra`."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("TASK_SYSTEM_")}, **extra}


def run(script: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, script, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=30, stdin=subprocess.DEVNULL)


def assert_refused(result: subprocess.CompletedProcess, named: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert "error: " + named in lines[0], lines[0]


@pytest.fixture(autouse=True)
def no_task_system_variables(monkeypatch):
    for name in [n for n in os.environ if n.startswith("TASK_SYSTEM_")]:
        monkeypatch.delenv(name)


@pytest.mark.parametrize("env, args, named", [
    ({"TASK_SYSTEM_PORT": "abc"}, [], "TASK_SYSTEM_PORT: must be an integer between 1 and 65535 (got 'abc')"),
    ({"TASK_SYSTEM_SUB_AGENT_LEASE_S": "-1"}, [], "TASK_SYSTEM_SUB_AGENT_LEASE_S: must be a number of seconds"),
    ({"TASK_SYSTEM_MAIN_HEARTBEAT_INTERVAL_S": "nan"}, [], "TASK_SYSTEM_MAIN_HEARTBEAT_INTERVAL_S:"),
    ({"TASK_SYSTEM_LOG_LEVEL": "LOUD"}, [], "TASK_SYSTEM_LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR"),
    ({"TASK_SYSTEM_RUN_BACKGROUND_JOBS": "maybe"}, [], "TASK_SYSTEM_RUN_BACKGROUND_JOBS: must be one of yes/no"),
    ({"TASK_SYSTEM_DB_POOL_SIZE": "0"}, [], "TASK_SYSTEM_DB_POOL_SIZE:"),
    ({"TASK_SYSTEM_MAX_SCRIPT_BYTES": "1.5"}, [], "TASK_SYSTEM_MAX_SCRIPT_BYTES:"),
    ({"TASK_SYSTEM_TOKEN": "  "}, [], "TASK_SYSTEM_TOKEN: must not be blank"),
    ({"TASK_SYSTEM_DATABASE_URL": "nonsense"}, [], "TASK_SYSTEM_DATABASE_URL: must be a database URL"),
    ({}, ["--database-url", "mysql://x"], "--database-url: must use one of the drivers"),
    ({"TASK_SYSTEM_PORT": "8080"}, ["--port", "abc"], "--port: must be an integer"),  # the flag's value is the one used
    ({"TASK_SYSTEM_NOTIFY_URLS": "https://a/hook,nope://x"}, [], "TASK_SYSTEM_NOTIFY_URLS: nope:// is neither http(s)"),
    ({}, ["--notify", "https://a/hook", "--notify", "no-url"], "--notify: 'no-url' is not a URL"),
    ({"TASK_SYSTEM_NOTIFY_ATTEMPTS": "0"}, [], "TASK_SYSTEM_NOTIFY_ATTEMPTS: must be a whole number between 1 and 100"),
    ({"TASK_SYSTEM_NOTIFY_TIMEOUT_S": "0"}, [], "TASK_SYSTEM_NOTIFY_TIMEOUT_S: must be a number of seconds"),
])
def test_bad_setting_stops_the_server_with_one_line_naming_it(env, args, named, tmp_path):
    assert_refused(run("app.py", ["--data-dir", str(tmp_path), *args], clean_env(**env)), named)


def test_database_password_is_not_echoed_in_the_error(tmp_path):
    result = run("app.py", ["--data-dir", str(tmp_path), "--database-url", "mysql://me:s3cret@db/tasks"], clean_env())
    assert_refused(result, "--database-url")
    assert "s3cret" not in result.stderr


def test_misspelt_variable_is_warned_about_and_the_server_starts(data_dir: Path):
    server = ServerProcess(data_dir, env={"TASK_SYSTEM_SUB_AGENT_LEASE": "30"}).start()
    try:
        output = (data_dir / "server.stdout").read_text()
        assert ("app.py: warning: TASK_SYSTEM_SUB_AGENT_LEASE is not a setting; "
                "did you mean TASK_SYSTEM_SUB_AGENT_LEASE_S?") in output
        assert server_events(data_dir, "setting_unknown", variable="TASK_SYSTEM_SUB_AGENT_LEASE",
                             suggestion="TASK_SYSTEM_SUB_AGENT_LEASE_S")
    finally:
        server.kill()


def test_environment_values_reach_the_config(monkeypatch):
    for name, value in {"MAIN_HEARTBEAT_INTERVAL_S": "0.3", "PORT": "8081", "LOG_LEVEL": "debug",
                        "RUN_BACKGROUND_JOBS": "Off", "NOTIFY_URLS": "http://a/hook, http://b/hook,"}.items():
        monkeypatch.setenv("TASK_SYSTEM_" + name, value)
    config = load_config()
    assert config["MAIN_HEARTBEAT_INTERVAL_S"] == 0.3 and config["PORT"] == 8081
    assert config["LOG_LEVEL"] == "DEBUG" and config["RUN_BACKGROUND_JOBS"] is False
    assert config["NOTIFY_URLS"] == ["http://a/hook", "http://b/hook"]


def test_each_notify_flag_adds_a_url_and_beats_the_environment(monkeypatch):
    from app import parse_args

    monkeypatch.setenv("TASK_SYSTEM_NOTIFY_URLS", "http://env/hook")
    config = load_config(parse_args(["--notify", "https://a/hook", "--notify", "tgram://token/chat"]))
    assert config["NOTIFY_URLS"] == ["https://a/hook", "tgram://token/chat"]


def test_overrides_beat_the_environment_and_other_keys_pass_through(monkeypatch, tmp_path):
    monkeypatch.setenv("TASK_SYSTEM_PORT", "8081")
    config = load_config({"PORT": "9000", "DATA_DIR": str(tmp_path), "TESTING": True,
                          "SQLALCHEMY_ECHO": False, "RUN_BACKGROUND_JOBS": False})
    assert config["PORT"] == 9000 and config["RUN_BACKGROUND_JOBS"] is False
    assert config["TESTING"] is True and config["SQLALCHEMY_ECHO"] is False
    assert set(DEFAULTS) <= set(config)


@pytest.mark.sqlite_only  # the PostgreSQL test run replaces the default with its own database
def test_database_url_defaults_to_sqlite_in_the_data_dir(tmp_path):
    assert load_config({"DATA_DIR": str(tmp_path)})["DATABASE_URL"] == \
        f"sqlite:///{tmp_path.resolve()}/database/task_system.db"
    url = "postgresql+psycopg://user:pass@db:5432/tasks"
    assert load_config({"DATABASE_URL": url})["DATABASE_URL"] == url


def test_a_bad_override_names_its_key():
    with pytest.raises(SettingError) as caught:
        load_config({"PORT": 0})
    assert (caught.value.key, caught.value.source) == ("PORT", "PORT")
    assert str(caught.value) == "PORT: must be an integer between 1 and 65535 (got 0)"


def test_unknown_variables_are_suggested_their_closest_setting():
    environ = {"TASK_SYSTEM_TOKN": "x", "TASK_SYSTEM_QWERTY": "x", "TASK_SYSTEM_PORT": "1",
               "TASK_SYSTEM_URL": "x", "TASK_SYSTEM_SUB_AGENT_ID": "x", "TASK_SYSTEM_NOTIFY_URLS": "", "HOME": "/"}
    assert unknown_variables(environ) == [("TASK_SYSTEM_QWERTY", None), ("TASK_SYSTEM_TOKN", "TASK_SYSTEM_TOKEN")]


def test_config_imports_nothing_an_agent_box_lacks():
    code = "import sys, config; print(sorted({'flask', 'sqlalchemy', 'gunicorn'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.stdout.strip() == "[]", result.stderr


@pytest.mark.parametrize("env, args, named", [
    ({}, ["--kill-grace-s", "abc"], "argument --kill-grace-s"),
    ({}, ["--output-flush-s", "inf"], "argument --output-flush-s"),
    ({}, ["--simulate-gpus", "2xabc"], "argument --simulate-gpus"),
    ({}, ["--cpu-cores", "-1"], "argument --cpu-cores"),
    ({}, ["--token", " "], "argument --token: must not be blank"),
    ({}, ["--name", ""], "argument --name: must not be blank"),
    ({}, ["--log-level", "LOUD"], "argument --log-level"),
    ({}, ["--server", "http://host:port"], "argument --server"),
    ({}, ["--state-dir", "/proc/no-such-dir"], "--state-dir"),
    ({"TASK_SYSTEM_TOKEN": ""}, [], "TASK_SYSTEM_TOKEN: must not be blank"),
])
def test_bad_agent_setting_stops_the_agent_with_one_line_naming_it(env, args, named, tmp_path):
    base = ["--server", "http://127.0.0.1:9", "--work-dir", str(tmp_path / "work"), "--state-dir", str(tmp_path)]
    assert_refused(run("setup_master_agent.py", [*base, *args], clean_env(**env)), named)
