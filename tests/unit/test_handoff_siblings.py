"""The hand-off channel in-process: who may send, who may receive, and the fd reserve."""
import os
import socket
import time

from forkwsgi.shared.board import Board
from forkwsgi.shared.handoff import SPARE_SLOTS, HandoffChannel


def channel():
    board = Board()
    return HandoffChannel(board)


def test_a_busy_worker_hands_on_only_while_a_sibling_says_it_has_a_thread_to_spare():
    handoff = channel()
    handoff.say_spare(False)
    assert handoff.siblings_busy(), "no sibling has room: a connection would only wait in the channel"
    handoff.spare_page[(handoff.slot + 1) % SPARE_SLOTS] = 1  # a sibling in another slot
    assert not handoff.siblings_busy()
    handoff.spare_page[(handoff.slot + 1) % SPARE_SLOTS] = 0
    handoff.say_spare(True)  # its own word does not count
    assert handoff.siblings_busy()


def test_a_send_is_stamped_so_that_receivers_look_when_a_thread_frees():
    handoff = channel()
    assert not handoff.sent_lately(time.monotonic())
    a, b = socket.socketpair()
    try:
        assert handoff.send(b"state", a.fileno())
        assert handoff.sent_lately(time.monotonic())
    finally:
        a.close()
        b.close()


def test_a_worker_without_its_reserved_fd_receives_nothing_and_the_connection_stays_queued():
    handoff = channel()
    a, b = socket.socketpair()
    try:
        assert handoff.send(b"state", a.fileno())
        assert not handoff.has_room()  # no fd reserved: as at the fd limit
        assert handoff.receive() is None
        assert handoff.reserve_fd() and handoff.has_room()
        received = handoff.receive()
        assert received is not None and received[1] == b"state"
        received[0].close()
        assert handoff.has_room(), "the reserve is taken back after each receive"
    finally:
        a.close()
        b.close()
        if handoff.spare_fd >= 0:
            os.close(handoff.spare_fd)


def test_the_word_of_a_worker_that_is_gone_is_forgotten():
    handoff = channel()
    pid = os.getpid() + 1
    handoff.spare_page[pid % SPARE_SLOTS] = 1  # a sibling killed outright, flag still set
    assert not handoff.siblings_busy()
    handoff.forget(pid)
    assert handoff.siblings_busy()
