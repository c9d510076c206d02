"""The hand-off channel in-process: who may send, who may receive, and the fd reserve."""
import copy
import os
import socket
import time

from forkwsgi.shared.board import Board
from forkwsgi.shared.handoff import SPARE_SLOTS, UNTAKEN_LIMIT, HandoffChannel


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


def worker_end(handoff, pid):
    """The channel as worker ``pid`` holds it: the master's object, inherited across fork (same
    sockets, same shared page), with the slot its pid gives it. Copied here instead of forking."""
    end = copy.copy(handoff)
    end.slot = pid % SPARE_SLOTS
    return end


def two_workers():
    master = channel()
    first_pid, second_pid = 1000, 1001
    return master, (first_pid, worker_end(master, first_pid)), (second_pid, worker_end(master, second_pid))


def test_a_worker_saying_it_has_a_thread_to_spare_is_seen_by_its_sibling_and_not_by_itself():
    _, (_, first), (_, second) = two_workers()
    assert not first.sibling_spare() and not second.sibling_spare()
    first.say_spare(True)
    assert second.sibling_spare() and not second.siblings_busy()
    assert not first.sibling_spare(), "its own word does not count"
    first.say_spare(False)
    assert not second.sibling_spare() and second.siblings_busy()


def test_hand_offs_left_untaken_make_siblings_busy_even_while_one_says_it_is_spare():
    _, (_, first), (_, second) = two_workers()
    first.say_spare(True)
    a, b = socket.socketpair()
    try:
        assert second.send(b"x" * (UNTAKEN_LIMIT + 1), a.fileno())
        assert second.siblings_busy(), "what was sent waits untaken: the spare word is stale"
        received = first.receive() if first.reserve_fd() else None
        assert received is not None
        received[0].close()
        assert not second.siblings_busy()
    finally:
        a.close()
        b.close()
        for end in (first, second):
            if end.spare_fd >= 0:
                os.close(end.spare_fd)


def test_a_send_by_one_worker_tells_its_siblings_to_look_for_a_second():
    _, (_, first), (_, second) = two_workers()
    now = time.monotonic()
    assert not second.sent_lately(now)
    a, b = socket.socketpair()
    try:
        assert first.send(b"state", a.fileno())
        now = time.monotonic()
        assert second.sent_lately(now)
        assert not second.sent_lately(now + 1.0)
    finally:
        a.close()
        b.close()


def test_a_connection_sent_by_one_worker_is_received_once_by_its_sibling():
    _, (_, first), (_, second) = two_workers()
    a, b = socket.socketpair()
    try:
        assert first.send(b"state", a.fileno())
        assert second.reserve_fd() and first.reserve_fd()
        received = second.receive()
        assert received is not None and received[1] == b"state"
        received[0].close()
        assert first.receive() is None, "exactly one worker owns a connection"
    finally:
        a.close()
        b.close()
        for end in (first, second):
            if end.spare_fd >= 0:
                os.close(end.spare_fd)


def test_the_master_forgets_a_worker_killed_while_it_said_it_was_spare():
    master, (first_pid, first), (_, second) = two_workers()
    first.say_spare(True)
    assert second.sibling_spare()
    master.forget(first_pid)
    assert not second.sibling_spare()
