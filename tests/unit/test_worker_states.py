"""The connection state table (forkwsgi/worker/states.py): well-formed, enforced, and all of it used."""
import pytest

from forkwsgi.worker import states
from tests.unit import test_worker_connections as scenarios
from tests.unit.worker_harness import TransitionLog


def test_every_state_but_closed_can_close_and_closed_is_final():
    for state in states.STATES:
        if state is states.CLOSED:
            assert not [key for key in states.TRANSITIONS if key[0] is states.CLOSED]
        else:
            assert states.next_state(state, states.CLOSE) is states.CLOSED


def test_every_state_is_reachable_from_a_new_connection():
    reached = {states.READING, states.HANDSHAKE}
    grown = True
    while grown:
        before = len(reached)
        reached |= {target for (state, _), target in states.TRANSITIONS.items() if state in reached}
        grown = len(reached) > before
    assert reached == set(states.STATES)


def test_an_event_the_state_does_not_allow_is_refused():
    with pytest.raises(states.IllegalTransition):
        states.next_state(states.APP, states.DISPATCH)  # a request already in the app cannot start again
    with pytest.raises(states.IllegalTransition):
        states.next_state(states.LINGER, states.DISPATCH)  # nothing is served once our side is shut
    with pytest.raises(states.IllegalTransition):
        states.next_state(states.SENDING, states.QUEUE)  # a pipelined request waits for the output to leave


def test_the_scenarios_take_every_transition_of_the_table(server_context):
    with TransitionLog() as log:
        for scenario in scenarios.PLAIN_SCENARIOS:
            scenario()
        for scenario in scenarios.TLS_SCENARIOS:
            scenario(server_context)
    assert set(states.TRANSITIONS) - log.taken == set(), "transitions no scenario takes"
    assert log.taken <= set(states.TRANSITIONS)


server_context = scenarios.server_context


def test_the_table_by_event_holds_exactly_the_transitions_of_the_table():
    by_event = {(state, event): target for event, row in states.AFTER.items() for state, target in row.items()}
    assert by_event == states.TRANSITIONS
