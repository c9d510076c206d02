"""The life of one client connection, as a table.

Theory of operation
-------------------
A connection is always in exactly one state, and only the events listed in
``TRANSITIONS`` move it. The state says who owns the connection and what the
loop may do with it; everything a state needs to remember (a deadline, the
parsed request, the app's job) is data on the connection, meaningful only in
the states that say so. ``Connection.move(event)`` applies the table and
raises ``IllegalTransition`` for any pair it does not list, so a path through
the worker that forgot a case fails loudly in the tests instead of leaving a
connection stuck.

The states:

``HANDSHAKE``   TLS only: the handshake runs in the loop, non-blocking, before
                any request. --header-timeout bounds it.
``READING``     Between responses. The loop polls it and feeds the parser;
                the parser says whether it is idle (keep-alive clock), inside a
                head (header clock) or inside a body (body clock). Only here can
                a connection move to a sibling (hand-off), and only while it
                holds raw bytes, no parsed request.
``WAITING``     A request is ready (raw bytes of a head, or a parsed request in
                ``pending``) but no thread is free. It is first come, first
                served; from here it is dispatched, handed to an idle sibling,
                or shed past --max-queue-time. No client clock runs: the wait
                is ours.
``APP``         A thread runs its request (``job`` is the handler's
                RequestRun). That thread owns the connection: it writes the
                response and may read a streamed body. The loop does not poll it
                with --threads; inline, the loop is inside the call.
``SUSPENDED``   The app's body is paused because the client does not read as
                fast as the app writes. The loop owns it again, drains the
                output, and resumes ``job`` once the client took half of it.
                --send-timeout bounds it.
``SENDING``     The response is complete but part of it is still queued; the
                loop drains it, then goes back to READING (pipelined requests
                are served in order, one at a time).
``CLOSING``     As SENDING, for the last response (Connection: close, an error
                answer, a stopping worker): once drained, the connection
                closes, lingering if the client sent more.
``LINGER``      Our side is shut (FIN sent); input is read and discarded until
                the client closes or LINGER_SECONDS pass, so that unread input
                does not turn our close into a reset that destroys the answer.
``CLOSED``      Closed, or handed to a sibling: gone from this worker.

Three facts about the client's side are kept apart from the state, because
they can happen in any state and only change what a state does next:
``input_ended`` (the client half-closed: serve what it sent, then close),
``read_paused`` (too much unparsed input while it cannot be served: stop
polling for input) and ``unread_input`` (the app left part of a streamed body
unread: close by lingering).
"""
from typing import Dict, Final

# (Final: the compiled core reads each name as the constant it is, with no lookup)
HANDSHAKE: Final = "handshake"
READING: Final = "reading"
WAITING: Final = "waiting"
APP: Final = "app"
SUSPENDED: Final = "suspended"
SENDING: Final = "sending"
CLOSING: Final = "closing"
LINGER: Final = "linger"
CLOSED: Final = "closed"

STATES = (HANDSHAKE, READING, WAITING, APP, SUSPENDED, SENDING, CLOSING, LINGER, CLOSED)
# The app has the connection (it is its thread's, or its body waits): the loop never serves it anew.
BUSY: Final = frozenset((APP, SUSPENDED))
# Output of a finished response is still queued: nothing new starts until it has left.
DRAINING: Final = frozenset((SENDING, CLOSING))

# Events (what happened), each with the reason it exists.
SECURED: Final = "secured"  # the TLS handshake completed
QUEUE: Final = "queue"  # a request is ready but no thread is free
UNQUEUE: Final = "unqueue"  # its turn came, or what waited was not a whole request yet: it reads on
DISPATCH: Final = "dispatch"  # a thread (or the inline loop) starts its request
SUSPEND: Final = "suspend"  # the output buffer is full: the app's body pauses
RESUME: Final = "resume"  # the client read enough: the body goes on
RESPONDED: Final = "responded"  # the response is all written: ready for the next request
QUEUED_OUTPUT: Final = "queued_output"  # the response is complete, part of it still queued
LAST_RESPONSE: Final = "last_response"  # the response is complete and closes the connection, part still queued
DRAINED: Final = "drained"  # queued output has all left (a last response closes instead)
SHUT: Final = "shut"  # our side is shut for a gentle close
CLOSE: Final = "close"  # the socket is closed (or moved to a sibling)

_ANY_OPEN = (HANDSHAKE, READING, WAITING, APP, SUSPENDED, SENDING, CLOSING, LINGER)

TRANSITIONS = {
    (HANDSHAKE, SECURED): READING,
    (READING, QUEUE): WAITING,
    (READING, DISPATCH): APP,
    (WAITING, UNQUEUE): READING,
    (APP, SUSPEND): SUSPENDED,
    (SUSPENDED, RESUME): APP,
    (APP, RESPONDED): READING,
    (APP, QUEUED_OUTPUT): SENDING,
    (APP, LAST_RESPONSE): CLOSING,
    (READING, LAST_RESPONSE): CLOSING,  # a refused request: its error answer is the last
    (WAITING, LAST_RESPONSE): CLOSING,  # a request shed past --max-queue-time
    (SENDING, DRAINED): READING,
    (HANDSHAKE, SHUT): LINGER,  # a refused handshake: its alert (or plain 400) must reach the client
    (READING, SHUT): LINGER,  # an idle connection closed by its keep-alive clock
    (CLOSING, SHUT): LINGER,  # the last response has left, and the client sent more
}
TRANSITIONS.update({(state, CLOSE): CLOSED for state in _ANY_OPEN})
# The same table by event, then state: what Connection.move looks up, without making a key pair.
AFTER: Final[Dict[str, Dict[str, str]]] = {}
for (_state, _event), _next in TRANSITIONS.items():
    AFTER.setdefault(_event, {})[_state] = _next
del _state, _event, _next


class IllegalTransition(Exception):
    """An event that the connection's state does not allow: a bug in the worker, never the client's doing."""


def next_state(state, event):
    """The state ``event`` leads to from ``state``; IllegalTransition where the table has no entry."""
    try:
        return TRANSITIONS[state, event]
    except KeyError:
        raise IllegalTransition("event %r in state %r" % (event, state)) from None
