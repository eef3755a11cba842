"""`tq` (python -m task_client) against a real server and agent: submit from a file, stdin and #TQ lines,
ls and show for people and for scripts, cancel, retry, agents, the help and every error path."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.cli_run import ROOT, tq, tq_env, tq_on_a_terminal
from tests.conftest import AgentProcess, ServerProcess, free_port, running_agent, running_server
from tests.helpers import Api


@pytest.fixture(scope="module")
def cli_server(tmp_path_factory) -> ServerProcess:
    yield from running_server(tmp_path_factory, "cli-data")


@pytest.fixture(scope="module")
def api(cli_server: ServerProcess) -> Api:
    return Api(cli_server.url)


@pytest.fixture(scope="module")
def agent(cli_server: ServerProcess, tmp_path_factory) -> AgentProcess:
    yield from running_agent(cli_server, tmp_path_factory, "cli-box", cpu_cores=4)


def submitted(result: subprocess.CompletedProcess) -> int:
    assert result.returncode == 0, result.stderr
    return int(result.stdout)


def test_submit_a_file_prints_the_id_and_the_task_runs(cli_server, api: Api, agent, tmp_path):
    script = tmp_path / "hello.sh"
    script.write_text("echo hello $WHO\n")
    task_id = submitted(tq(cli_server.url, "submit", str(script), "--env", "WHO=world"))
    task = api.wait_status(task_id, "completed")
    assert task["name"] == "hello.sh" and task["env"] == {"WHO": "world"}
    assert api.get(f"/api/tasks/{task_id}/log/raw").content == b"hello world\n"


@pytest.mark.parametrize("args", [["submit", "-"], ["submit"]], ids=["dash", "no-file"])
def test_submit_reads_the_script_from_stdin(cli_server, api: Api, agent, args):
    task_id = submitted(tq(cli_server.url, *args, stdin=b"printf 'from stdin'\n"))
    task = api.wait_status(task_id, "completed")
    assert task["name"] == "stdin" and task["script_content"] == "printf 'from stdin'\n"


def test_tq_header_lines_set_options_and_flags_override_them(cli_server, api: Api):
    script = ("#!/bin/bash\n#TQ --name from-header --gpus 1 --env A=1 --env B=2\n\n"
              "#TQ --priority 2 --time-limit 1h  # a comment\necho $A$B\n#TQ --cpus 3\n")
    task_id = submitted(tq(cli_server.url, "submit", "-", "--name", "from-flag", "--env", "B=3",
                           stdin=script.encode()))
    task = api.task(task_id)
    assert (task["name"], task["gpu_count"], task["priority"], task["time_limit_s"]) == ("from-flag", 1, 2, 3600)
    assert task["env"] == {"A": "1", "B": "3"}
    assert task["cpu_cores"] == 1  # a #TQ line after the first command is no option


def test_submit_takes_every_option_and_prints_json(cli_server, api: Api, tmp_path):
    first = api.create_task("sleep 60", name="first")
    args = ["--name", "all", "--template", "tmpl", "--priority", "1", "--cpus", "2", "--gpus", "1",
            "--gpu-mem", "1024", "--after", str(first["id"]), "--workdir", "sub/dir", "--time-limit", "2h30m",
            "--notify", "http://127.0.0.1:9/hook", "--json"]
    result = tq(cli_server.url, "submit", "-", *args, stdin=b"echo all")
    task = json.loads(result.stdout)
    assert result.returncode == 0 and task == api.task(task["id"])
    assert (task["template_type"], task["priority"], task["cpu_cores"], task["gpu_count"], task["gpu_memory"]) \
        == ("tmpl", 1, 2, 1, 1024)
    assert (task["depends_on"], task["work_dir"], task["time_limit_s"], task["status"]) \
        == ([first["id"]], "sub/dir", 9000, "blocked")
    assert task["notify"] == ["http://127.0.0.1:9/hook"]


def test_ls_prints_a_plain_table_that_fits_the_width(cli_server, api: Api):
    api.create_task("echo x", name="a-rather-long-task-name-" + "x" * 60)
    result = tq(cli_server.url, "ls", COLUMNS="60")
    lines = result.stdout.decode().splitlines()
    assert result.returncode == 0 and lines[0].split()[:3] == ["ID", "STATUS", "NAME"]
    assert all(len(line) <= 60 for line in lines), lines
    assert b"\x1b[" not in result.stdout  # piped: no colour
    wide = tq(cli_server.url, "ls").stdout.decode()
    assert "x" * 60 in wide and "AGENT" in wide  # not a terminal, no COLUMNS: nothing cut


def test_ls_colours_the_status_on_a_terminal(cli_server, api: Api):
    api.create_task("echo x", name="coloured")
    code, out = tq_on_a_terminal(cli_server.url, "ls")
    assert code == 0 and b"\x1b[" in out and b"coloured" in out


def test_ls_json_and_filters(cli_server, api: Api, agent):
    done = api.create_task("echo done", name="filter-me-done")
    api.wait_status(done["id"], "completed")
    listed = json.loads(tq(cli_server.url, "ls", "--json", "--name", "FILTER-me", "--status", "completed").stdout)
    assert [t["id"] for t in listed] == [done["id"]] and listed[0] == api.task(done["id"])
    assert json.loads(tq(cli_server.url, "ls", "--json", "--limit", "1").stdout)[0]["id"] >= done["id"]


def test_show_for_people_and_as_json(cli_server, api: Api):
    task = api.create_task("echo one\necho two", name="shown", env={"K": "v"})
    human = tq(cli_server.url, "show", str(task["id"])).stdout.decode().splitlines()
    assert "name            shown" in human and "env             K=v" in human
    assert human[-3:] == ["script:", "  echo one", "  echo two"]
    assert json.loads(tq(cli_server.url, "show", str(task["id"]), "--json").stdout) == api.task(task["id"])


def test_cancel_and_retry(cli_server, api: Api):
    blocker = api.create_task("sleep 60", name="blocker")
    later = api.create_task("echo later", name="later", depends_on=[blocker["id"]])
    result = tq(cli_server.url, "cancel", str(blocker["id"]))
    assert result.returncode == 0 and result.stdout.decode() == f"{blocker['id']} canceled\n"
    retried = tq(cli_server.url, "retry", str(blocker["id"]))
    new_id = int(retried.stdout)
    assert api.task(new_id)["retry_of"] == blocker["id"]
    assert f"also re-created {later['id']} as " in retried.stderr.decode()
    again = tq(cli_server.url, "cancel", str(blocker["id"]), str(new_id))  # the first has finished: refused
    assert again.returncode == 1 and f"{new_id} canceled" in again.stdout.decode()
    assert "already finished" in again.stderr.decode()
    as_json = json.loads(tq(cli_server.url, "retry", str(new_id), "--json").stdout)
    assert as_json["task"]["retry_of"] == new_id


def test_agents_tree_and_json(cli_server, api: Api, agent):
    human = tq(cli_server.url, "agents").stdout.decode()
    assert "cli-box" in human and "online" in human
    assert json.loads(tq(cli_server.url, "agents", "--json").stdout)[0]["name"] == "cli-box"


@pytest.mark.parametrize("command", ["", "submit", "ls", "show", "logs", "wait", "cancel", "retry", "agents"])
def test_every_command_has_help(command):
    result = tq(None, *command.split(), "--help")
    assert result.returncode == 0 and result.stdout.startswith(b"Usage: ") and b"Options:" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["bogus"], b"No such command 'bogus'"),
    (["ls", "--bogus"], b"No such option '--bogus'"),
    (["show"], b"Missing argument 'ID'"),
    (["show", "abc"], b"'abc' is not a valid integer"),
    (["submit", "-", "--priority", "9"], b"9 is not in the range 1<=x<=5"),
    (["submit", "-", "--env", "NOEQUALS"], b"'NOEQUALS' is not K=V"),
    (["submit", "-", "--after", "1,x"], b"'x' is not a task id"),
    (["submit", "-", "--time-limit", "5x"], b"is not a duration"),
    (["submit", "/no/such/file"], b"No such file or directory"),
    (["ls", "--status", "runing"], b"unknown status 'runing'"),
    (["--server", "localhost:5000", "ls"], b"is no URL"),
])
def test_bad_usage_exits_2_with_the_usage(args, message):
    result = tq("http://127.0.0.1:9", *args, stdin=b"echo x")
    assert result.returncode == 2 and b"Usage: " in result.stderr and message in result.stderr, result.stderr


def test_a_bad_tq_line_is_bad_usage_naming_the_line(cli_server):
    result = tq(cli_server.url, "submit", "-", stdin=b"#!/bin/bash\n#TQ --gpus 1\n#TQ --gpuz 2\necho x\n")
    assert result.returncode == 2 and b"stdin: line 3: #TQ --gpuz 2: No such option '--gpuz'" in result.stderr


@pytest.mark.parametrize("args", [["ls"], ["show", "1"], ["logs", "1", "-f"], ["wait", "1"], ["agents"],
                                  ["submit", "-"]])
def test_an_unreachable_server_is_one_line_naming_the_url_exit_1(args):
    url = f"http://127.0.0.1:{free_port()}"
    result = tq(url, *args, stdin=b"echo x")
    assert result.returncode == 1 and result.stdout == b""
    assert result.stderr.decode() == f"Error: cannot reach the task server at {url} (Connection refused)\n"


@pytest.mark.parametrize("args", [["show", "987654"], ["logs", "987654"], ["logs", "987654", "-f"],
                                  ["wait", "987654"], ["cancel", "987654"], ["retry", "987654"]])
def test_an_unknown_id_is_the_servers_message_exit_1(cli_server, args):
    result = tq(cli_server.url, *args)
    assert result.returncode == 1 and result.stderr.decode() == "Error: Task 987654 does not exist.\n"


def test_a_refused_submit_is_the_servers_message(cli_server):
    result = tq(cli_server.url, "submit", "-", "--env", "TASK_ID=1", stdin=b"echo x")
    assert result.returncode == 1 and result.stderr.startswith(b"Error: ") and b"TASK_ID" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_a_token_comes_from_the_environment(tmp_path):
    server = ServerProcess(tmp_path, token="s3cret").start()
    try:
        refused = tq(server.url, "ls")
        assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1
        assert tq(server.url, "ls", TASK_SYSTEM_TOKEN="s3cret").returncode == 0
    finally:
        server.kill()


def test_shell_completion_scripts_for_bash_and_zsh():
    run = "import sys; sys.argv[0] = 'tq'; from task_client.cli import main; main()"
    for shell, marker in (("bash", b"complete -o nosort -F _tq_completion tq"), ("zsh", b"#compdef tq")):
        result = subprocess.run([sys.executable, "-c", run], cwd=ROOT, capture_output=True, timeout=30,
                                env={**tq_env(None), "_TQ_COMPLETE": f"{shell}_source"})
        assert result.returncode == 0 and marker in result.stdout, result.stdout
