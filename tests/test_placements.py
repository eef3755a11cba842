"""A task's placement (services/placements.py): the ALLOWED table in full, the columns each state
means, the idempotent entry points, and the batched statement staying inside the table.
In-process app, services called directly."""
from __future__ import annotations

import itertools

import pytest

from backend.extensions import db
from backend.models import Task
from backend.services import placements
from backend.services import tasks as task_service
from backend.services.errors import Conflict
from backend.services.placements import Placement as P
from backend.services.unit_of_work import unit_of_work

# placed -> acknowledged -> released, a hand-over released before it is confirmed, and one withdrawn
# (its agent never started it); services/placements.py ALLOWED must say exactly this.
EXPECTED_ALLOWED = {
    P.UNPLACED: {P.PLACED},
    P.PLACED: {P.ACKNOWLEDGED, P.RELEASED, P.UNPLACED},
    P.ACKNOWLEDGED: {P.ACKNOWLEDGED, P.RELEASED},
    P.RELEASED: set(),
}
# The columns that make each state (agent_id, holds_resources, handover_acked).
COLUMNS = {
    P.UNPLACED: (None, False, False),
    P.PLACED: ("agent-a", True, False),
    P.ACKNOWLEDGED: ("agent-a", True, True),
    P.RELEASED: ("agent-a", False, True),
}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from backend.factory import create_app

    return create_app({"TESTING": True, "DATA_DIR": str(tmp_path_factory.mktemp("placements")),
                       "RUN_BACKGROUND_JOBS": False})


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield app
        db.session.remove()


def task_in(state: P) -> int:
    """A task whose placement is `state` (set-up only: columns written straight)."""
    task = task_service.create_task(name="t", template_type="custom", script_content="echo hi")
    with unit_of_work():
        row = db.session.get(Task, task.id)
        row.agent_id, row.holds_resources, row.handover_acked = COLUMNS[state]
        row.gpu_ids = [0] if row.agent_id else []
    return task.id


def fresh(task_id: int) -> Task:
    db.session.expire_all()
    return db.session.get(Task, task_id)


def test_allowed_table_is_placed_acknowledged_released():
    assert placements.ALLOWED == EXPECTED_ALLOWED


@pytest.mark.parametrize("state", list(P), ids=lambda s: s.value)
def test_each_state_is_read_back_from_its_columns(ctx, state):
    assert placements.state_of(fresh(task_in(state))) is state


@pytest.mark.parametrize("old, new", list(itertools.product(P, P)), ids=lambda s: s.value)
def test_transition_follows_allowed_table(ctx, old, new):
    task_id = task_in(old)
    if new in EXPECTED_ALLOWED[old]:
        with unit_of_work():
            placements.transition(db.session.get(Task, task_id), new, agent_id="agent-b", gpu_ids=[1],
                                  sub_agent_id="sub-1")
        assert placements.state_of(fresh(task_id)) is new
    else:
        with pytest.raises(Conflict) as err:
            with unit_of_work():
                placements.transition(db.session.get(Task, task_id), new, agent_id="agent-b", gpu_ids=[1])
        assert err.value.code == "invalid_placement" and err.value.status == 409
        assert placements.state_of(fresh(task_id)) is old  # the refused change rolled back


def test_place_acknowledge_release_write_the_columns_and_keep_the_record(ctx):
    task_id = task_in(P.UNPLACED)
    with unit_of_work():
        placements.place(db.session.get(Task, task_id), "agent-b", [2, 3])
    placed = fresh(task_id)
    assert (placed.agent_id, placed.gpu_ids, placed.sub_agent_id) == ("agent-b", [2, 3], None)
    assert (placed.holds_resources, placed.handover_acked) == (True, False)
    with unit_of_work():
        placements.acknowledge(db.session.get(Task, task_id), "sub-9")
    acknowledged = fresh(task_id)
    assert (acknowledged.sub_agent_id, acknowledged.holds_resources, acknowledged.handover_acked) == (
        "sub-9", True, True)
    with unit_of_work():
        placements.release(db.session.get(Task, task_id))
    released = fresh(task_id)
    assert placements.state_of(released) is P.RELEASED and released.handover_acked is True
    assert (released.agent_id, released.sub_agent_id, released.gpu_ids) == ("agent-b", "sub-9", [2, 3])


def test_withdraw_clears_the_placement_and_is_nothing_for_a_task_never_placed(ctx):
    placed, never = task_in(P.PLACED), task_in(P.UNPLACED)
    with unit_of_work():
        db.session.get(Task, placed).sub_agent_id = "sub-1"  # whatever it holds, withdraw clears it
    with unit_of_work():
        for task_id in (placed, never):
            placements.withdraw(db.session.get(Task, task_id))
    for task_id in (placed, never):
        task = fresh(task_id)
        assert (task.agent_id, task.sub_agent_id, task.gpu_ids, task.holds_resources, task.handover_acked) == (
            None, None, [], False, False)


@pytest.mark.parametrize("state, after", [(P.UNPLACED, P.UNPLACED), (P.PLACED, P.RELEASED),
                                          (P.ACKNOWLEDGED, P.RELEASED), (P.RELEASED, P.RELEASED)],
                         ids=lambda s: s.value)
def test_release_frees_the_room_once_and_is_nothing_without_room(ctx, state, after):
    task_id = task_in(state)
    with unit_of_work():
        placements.release(db.session.get(Task, task_id))
    assert placements.state_of(fresh(task_id)) is after


@pytest.mark.parametrize("state, after", [(P.UNPLACED, P.UNPLACED), (P.PLACED, P.RELEASED),
                                          (P.ACKNOWLEDGED, P.ACKNOWLEDGED), (P.RELEASED, P.RELEASED)],
                         ids=lambda s: s.value)
def test_release_if_unacknowledged_frees_only_a_hand_over_nobody_confirmed(ctx, state, after):
    task_id = task_in(state)
    with unit_of_work():
        placements.release_if_unacknowledged(db.session.get(Task, task_id))
    assert placements.state_of(fresh(task_id)) is after


@pytest.mark.parametrize("state", list(P), ids=lambda s: s.value)
def test_a_main_agents_report_acknowledges_only_tasks_that_hold_room(ctx, state):
    task_id = task_in(state)
    with unit_of_work():
        placements.acknowledge_reported([task_id])
    expected = P.ACKNOWLEDGED if state in (P.PLACED, P.ACKNOWLEDGED) else state
    assert placements.state_of(fresh(task_id)) is expected

