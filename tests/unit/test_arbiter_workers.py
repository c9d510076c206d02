"""The master's worker table and generations, driven with plain objects: a fake kill, a fake clock."""
import signal

from forkwsgi.errors import BOOT_ERROR
from forkwsgi.master.generations import MAX_BOOT_FAILURES, Generations
from forkwsgi.master.workers import KILL_GRACE, WorkerProcess, WorkerTable, describe_exit, failed_to_boot


class Clock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


class Kills(list):
    def __call__(self, pid, sig):
        self.append((pid, sig))


def make_table():
    clock, kills = Clock(), Kills()
    return WorkerTable(kill=kills, clock=clock), clock, kills


def add_worker(table, pid, generation=0, booted=True, last_beat=None):
    worker = WorkerProcess(pid, generation)
    worker.pid = pid
    if booted:
        worker.heartbeat.mark_booted()
    worker.heartbeat.beat(table.clock() if last_beat is None else last_beat)  # on the fake clock
    table.add(worker)
    return worker


def test_a_booted_worker_is_told_to_stop_gracefully_one_still_booting_at_once():
    table, clock, kills = make_table()
    booted, booting = add_worker(table, 11), add_worker(table, 12, booted=False)
    table.tell_to_stop(booted)
    table.tell_to_stop(booting)
    assert kills == [(11, signal.SIGTERM), (12, signal.SIGQUIT)]
    assert booted.told_to_stop and booting.told_to_stop
    assert booted.quit_at == 0.0 and booting.quit_at == clock.now
    assert table.running(0) == [] and table.any_quitting()


def test_a_silent_worker_is_aborted_then_killed_after_the_grace():
    table, clock, kills = make_table()
    silent = add_worker(table, 21, last_beat=clock.now - 31)
    add_worker(table, 22)
    table.enforce_timeouts(30)
    assert kills == [(21, signal.SIGABRT), (21, signal.SIGCONT)] and silent.aborted_at == clock.now
    assert table.next_due(30) == clock.now + KILL_GRACE
    clock.now += KILL_GRACE - 0.01
    table.enforce_timeouts(30)
    assert len(kills) == 2
    clock.now += 0.01
    table.enforce_timeouts(30)
    table.enforce_timeouts(30)
    assert kills[2:] == [(21, signal.SIGKILL)] and silent.killed  # once


def test_no_timeout_means_no_abort_and_no_deadline():
    table, clock, kills = make_table()
    add_worker(table, 31, last_beat=clock.now - 10_000)
    table.enforce_timeouts(0)
    assert kills == [] and table.next_due(0) is None


def test_the_next_deadline_is_the_earliest_heartbeat_deadline():
    table, clock, _ = make_table()
    add_worker(table, 41, last_beat=clock.now - 5)
    add_worker(table, 42, last_beat=clock.now - 20)
    assert table.next_due(30) == clock.now + 10


def test_a_worker_gone_already_is_not_an_error_to_signal():
    def gone(pid, sig):
        raise ProcessLookupError
    table = WorkerTable(kill=gone)
    worker = add_worker(table, 51)
    table.tell_to_stop(worker)
    assert worker.told_to_stop


def test_reap_takes_exited_workers_out_and_hands_other_children_on():
    table, _, _ = make_table()
    worker = add_worker(table, 61)
    add_worker(table, 62)
    exits = [(61, 0), (99, 256), (0, 0)]  # a worker, another child (a new master), then nothing more
    others = []
    reaped = table.reap(lambda pid, code: others.append((pid, code)), waitpid=lambda pid, flags: exits.pop(0))
    assert reaped == [(worker, 0)] and others == [(99, 1)] and list(table.by_pid) == [62]
    assert table.reap(waitpid=lambda pid, flags: (_ for _ in ()).throw(ChildProcessError())) == []


def test_an_exit_is_described_by_how_the_worker_went():
    worker = WorkerProcess(1, 0)
    worker.pid = 7
    assert describe_exit(worker, 0) == ("info", "worker 7 exited")
    assert describe_exit(worker, 3) == ("error", "worker 7 exited with code 3")
    assert describe_exit(worker, -signal.SIGKILL) == ("error", "worker 7 was killed by SIGKILL (out of memory?)")
    worker.killed = True
    assert describe_exit(worker, -signal.SIGKILL) == ("error", "worker 7 was killed by SIGKILL")
    assert failed_to_boot(worker, BOOT_ERROR)
    worker.told_to_stop = True
    assert not failed_to_boot(worker, BOOT_ERROR)  # its failure no longer matters


# ----- generations


def make_generations():
    table, clock, kills = make_table()
    notes = []
    generations = Generations(table, notify=notes.append, clock=clock)
    spawned = []

    def spawn():
        worker = add_worker(table, 100 + len(spawned), generations.generation, booted=False)
        spawned.append(worker)
        return worker
    return generations, table, clock, kills, notes, spawn, spawned


def test_converge_spawns_what_is_missing_and_stops_the_youngest_extra():
    generations, table, _, kills, _, spawn, spawned = make_generations()
    generations.converge(3, spawn)
    assert len(spawned) == 3 and len(table) == 3
    generations.converge(1, spawn)
    assert [pid for pid, _ in kills] == [100, 101]  # the oldest two go, by age
    assert len(spawned) == 3


def test_the_previous_generation_is_stopped_only_once_the_new_one_has_all_booted():
    generations, table, clock, kills, notes, spawn, spawned = make_generations()
    old = [add_worker(table, pid) for pid in (1, 2)]
    generations.serving = 0
    generations.reload_started()
    generations.begin()
    generations.converge(2, spawn)
    assert kills == [] and len(spawned) == 2
    spawned[0].heartbeat.mark_booted()
    generations.converge(2, spawn)
    assert kills == []  # one of two booted: the old ones still serve
    spawned[1].heartbeat.mark_booted()
    generations.converge(2, spawn)
    assert sorted(kills) == [(1, signal.SIGTERM), (2, signal.SIGTERM)] and all(w.told_to_stop for w in old)
    assert generations.serving == 1 and notes[-1] == "READY=1" and generations.settled() is False


def test_a_reload_stops_an_earlier_reload_still_booting_but_keeps_the_serving_one():
    generations, table, _, kills, _, spawn, spawned = make_generations()
    add_worker(table, 1)
    generations.serving = 0
    generations.begin()
    generations.converge(1, spawn)  # generation 1 still booting
    generations.begin()
    assert kills == [(100, signal.SIGQUIT)]  # generation 1 goes; generation 0 serves on


def test_boot_failures_back_off_then_give_up_keeping_the_previous_workers():
    generations, table, clock, kills, _, spawn, _ = make_generations()
    generations.ever_booted = True
    previous = add_worker(table, 1)
    generations.begin()
    delays = []
    for _ in range(MAX_BOOT_FAILURES - 1):
        assert generations.boot_failed() is False
        delays.append(round(generations.next_spawn_at - clock.now, 3))
    assert delays == [0.1, 0.2, 0.4, 0.8]
    booting = add_worker(table, 2, generation=1, booted=False)
    assert generations.boot_failed() is False  # given up: the previous worker is kept
    assert previous.generation == 1 and not previous.told_to_stop and booting.told_to_stop
    assert generations.serving == 1 and generations.boot_failures == 0


def test_a_first_boot_failure_stops_the_master():
    generations = Generations(WorkerTable(kill=Kills()), notify=lambda message: None)
    assert generations.boot_failed() is True


def test_the_board_says_lone_exactly_while_one_worker_is_wanted():
    """A lone worker takes what queued in an idle turn (worker/intake.py); with siblings it must not."""
    from types import SimpleNamespace

    from forkwsgi.master.arbiter import Arbiter
    from forkwsgi.shared.board import Board
    board = Board()
    for wanted, lone in ((1, True), (3, False), (1, True), (0, False)):
        master = SimpleNamespace(wanted=lambda: wanted, board=board, spawner=None, generation=0, worker_setup=None,
                                 generations=SimpleNamespace(converge=lambda count, spawn: None))
        Arbiter.manage_workers(master)
        assert board.lone is lone, wanted
