"""The main agent's state file keeps its memory per server identity: a file from before server ids is
adopted by the first server, switching servers never mixes memories, and nothing in it grows forever."""
from __future__ import annotations

import json

from agent.state import MAX_FINISHED_IDS, MAX_IDLE_OTHER_SERVERS, AgentState, ServerMemory, TaskRecord


def record(task_id: int) -> TaskRecord:
    return TaskRecord(task_id=task_id, sub_agent_id=f"sub-{task_id}-x", pid=4000 + task_id, create_time=1.5,
                      cpu_cores=1, cpu_ids=[0], gpu_ids=[1])


def test_each_servers_memory_round_trips_through_the_file(tmp_path):
    current = ServerMemory(agent_id="new-id", tasks={1: record(1)}, died={3: "sub-agent crashed"},
                           rejected={4: "already ran here"})
    current.add_finished(5)
    old = ServerMemory(agent_id="old-id", tasks={1: record(1), 2: record(2)})
    old.add_finished(9)
    state = AgentState(server_id="server-b", current=current, other_servers={"server-a": old})
    state.save(tmp_path)
    loaded = AgentState.load(tmp_path)
    assert loaded == state
    assert loaded.memory("server-a").tasks[2] == record(2) and loaded.memory().has_finished(5)
    assert (loaded.current.died, loaded.current.rejected) == ({3: "sub-agent crashed"}, {4: "already ran here"})


def test_a_task_running_or_reported_is_in_hand_and_the_table_of_sub_agents_follows_the_state():
    from agent.sub_agent_process import SubAgentProcess, SubAgentTable

    state = AgentState(server_id="server-a", current=ServerMemory(tasks={1: record(1)}, died={2: "lost"},
                                                                  rejected={3: "disk full"}))
    assert [state.current.is_in_hand(t) for t in (1, 2, 3, 4)] == [True, True, True, False]
    table = SubAgentTable(state)
    table.add(SubAgentProcess(state.current.tasks[1], is_child=False))
    assert state.use_server("server-b") is True  # the task of server-a still runs: counted, not reported
    assert table.current == {} and [(sid, sub.record.task_id) for sid, sub in table.all()] == [("server-a", 1)]
    assert table.cores_left(4) == 3 and not state.current.is_in_hand(2)  # the reports stay with server-a
    table.remove(1, "server-a")
    assert state.memory("server-a").tasks == {} and table.processes == {}


def test_a_file_from_before_server_ids_is_adopted_by_the_first_server(tmp_path):
    (tmp_path / "state.json").write_text(json.dumps({
        "agent_id": "legacy", "tasks": {"7": {"task_id": 7, "sub_agent_id": "sub-7-x", "pid": 42,
                                              "create_time": 1.5, "cpu_cores": 2, "cpu_ids": [0, 1]}}}))
    state = AgentState.load(tmp_path)
    assert (state.server_id, state.current.agent_id, sorted(state.current.tasks)) == (None, "legacy", [7])
    assert state.use_server("server-a") is False  # adopted, not switched: the running task stays current
    assert (state.server_id, state.current.agent_id, sorted(state.current.tasks)) == ("server-a", "legacy", [7])
    assert state.other_servers == {}


def test_switching_servers_puts_the_old_memory_away_and_takes_up_the_new_ones():
    state = AgentState(server_id="server-a", current=ServerMemory(agent_id="a-id", tasks={1: record(1)}))
    state.current.add_finished(3)
    assert state.use_server("server-a") is False
    assert state.use_server("server-b") is True
    assert state.current == ServerMemory() and state.server_id == "server-b"  # fresh: task 3 may run here
    assert not state.current.has_finished(3)
    state.current.agent_id = "b-id"
    assert state.use_server("server-a") is True  # back: its id, its tasks and its finished ids again
    assert (state.current.agent_id, sorted(state.current.tasks)) == ("a-id", [1])
    assert state.current.has_finished(3) and state.memory("server-b").agent_id == "b-id"


def test_finished_ids_keep_only_the_newest(tmp_path):
    memory = ServerMemory()
    for task_id in range(1, MAX_FINISHED_IDS + 101):
        memory.add_finished(task_id)
    assert len(memory.finished_ids) == MAX_FINISHED_IDS
    assert not memory.has_finished(100) and memory.has_finished(101) and memory.has_finished(MAX_FINISHED_IDS + 100)
    AgentState(server_id="s", current=memory).save(tmp_path)
    assert AgentState.load(tmp_path).current == memory


def test_memories_of_servers_left_behind_are_bounded_unless_their_tasks_still_run():
    state = AgentState(server_id="server-0", current=ServerMemory(tasks={1: record(1)}))  # still runs
    for n in range(1, MAX_IDLE_OTHER_SERVERS + 6):
        state.use_server(f"server-{n}")
        state.current.add_finished(n)
    kept = list(state.other_servers)
    assert "server-0" in kept  # its task is still on the box
    idle = [key for key in kept if key != "server-0"]
    assert len(idle) == MAX_IDLE_OTHER_SERVERS
    assert idle[-1] == f"server-{MAX_IDLE_OTHER_SERVERS + 4}"  # the newest kept, the oldest forgotten
