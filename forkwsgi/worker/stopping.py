"""How far a worker is from stopping, and what that means for each response.

A worker stops in one of two ways. While its siblings stay (a reload, fewer
workers, --max-requests, a memory limit) it *hands over*: it stops accepting,
moves its idle connections to siblings and keeps connections alive, since a
sibling will serve them. On a full stop (TERM with the master going, or no
hand-off) it *closes*: responses say Connection: close and what the backlog
held is still served. --shutdown-delay sets a server-wide flag (the board)
that makes responses close before any of that begins.
"""
from typing import Any

from forkwsgi.shared.board import DRAINING


class StopState:
    # (typed for mypyc: each response asks keeps_alive and closing)
    board_page: Any  # the board's shared page (a bytearray in tests)
    keepalive: bool
    stopping: bool
    handing_over: bool
    closing_connections: bool
    stop_after_turn: bool
    may_hand_off: bool
    deadline: float

    def __init__(self, graceful_timeout, board_page, keepalive, handoff=None):
        self.graceful_timeout = graceful_timeout
        self.handoff = handoff  # the hand-off channel when --handoff is on and siblings may exist
        self.may_hand_off = handoff is not None  # False once the master is gone: no sibling can be trusted
        self.board_page = board_page  # read per response, not once a turn: the loop may be in an app call
        self.keepalive = keepalive  # --keepalive above 0
        self.stopping = False
        self.handing_over = False  # stopping while siblings stay: connections move to them
        self.closing_connections = False  # responses say Connection: close (a full stop)
        self.stop_after_turn = False  # --max-requests, memory, --timeout: stop once this loop turn ends
        self.deadline = 0.0  # --graceful-timeout: when what is left is closed

    def begin(self, now):
        """Stopping starts now, handing over if siblings stay; False if it had already."""
        if self.stopping:
            return False
        self.stopping = True
        self.handing_over = self.handoff_open()
        if not self.handing_over:
            self.closing_connections = True
        self.deadline = now + self.graceful_timeout
        return True

    def handoff_open(self):
        """Connections may move to siblings now: hand-off is on and the master says siblings stay."""
        return self.may_hand_off and self.handoff.open

    def orphaned(self):
        """The master is gone: close connections on stopping, never move them."""
        self.may_hand_off = False

    def stop_coming(self):
        """A stop is on its way (TERM queued, a retirement): without hand-off, the response under way
        already says Connection: close."""
        if not self.handoff_open():
            self.closing_connections = True

    def request_stop(self):
        """Stop after this turn of the loop."""
        self.stop_after_turn = True
        self.stop_coming()

    def closing(self) -> bool:
        """Responses now say Connection: close: a full stop, a stop without hand-off, or --shutdown-delay."""
        return self.closing_connections or self.board_page[DRAINING] == 1

    def draining(self) -> bool:
        """--shutdown-delay is running: health probes answer 503, responses close."""
        return self.board_page[DRAINING] == 1

    def keeps_alive(self, tls: bool) -> bool:
        """Whether a response may leave its connection open, as far as stopping goes. A worker that
        hands over closes what it cannot move (TLS)."""
        return (self.keepalive and not self.closing_connections and self.board_page[DRAINING] == 0
                and not (self.handing_over and tls))

    def in_app_call(self, inside):
        """With shedding, the watcher queues connections during an inline call: siblings must not
        count on this worker meanwhile (the loop's next turn says again whether it has a thread)."""
        if inside and self.may_hand_off:
            self.handoff.say_spare(False)
