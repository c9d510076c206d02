"""--max-workers: the autoscaler's decisions in-process, and the settings it refuses."""
from forkwsgi.master.autoscale import Autoscaler


def test_the_autoscaler_adds_under_pressure_and_retires_what_stays_idle():
    scaler = Autoscaler(up_after=1.0, down_after=5.0)
    assert scaler.sample(0.0, {1: True}, 0, 1, 3) == 0
    assert scaler.sample(0.5, {1: True}, 0, 1, 3) == 0
    assert scaler.sample(1.0, {1: True}, 0, 1, 3) == 1  # busy for 1 s
    assert scaler.sample(1.5, {1: True, 2: False}, 4, 2, 2) == 0  # a queue, but the last change is young
    assert scaler.sample(2.0, {1: True, 2: True}, 4, 2, 2) == 1
    assert scaler.sample(3.0, {1: True, 2: True, 3: True}, 4, 3, 0) == 0  # no room left
    assert scaler.extra == 2
    assert scaler.sample(3.1, {1: True, 2: False, 3: True}, 0, 3, 1) == 0  # a free one resets the pressure
    for now in (4.0, 6.0, 8.0):
        assert scaler.sample(now, {1: False, 2: False, 3: False}, 0, 3, 1) == 0
    assert scaler.sample(9.0, {1: False, 2: False, 3: False}, 0, 3, 1) == -1  # idle 5 s: one less
    assert scaler.sample(9.5, {1: False, 2: False}, 0, 2, 2) == 0  # a second between retirements
    assert scaler.sample(10.0, {1: False, 2: False}, 0, 2, 2) == -1
    assert scaler.extra == 0
    assert scaler.sample(20.0, {1: False}, 0, 1, 3) == 0  # never below -w


def test_max_workers_below_w_and_bad_delays_are_refused():
    import subprocess
    import sys
    for args, text in ((["-w", "3", "--max-workers", "2"], "--max-workers 2 is below -w 3"),
                       (["--max-workers", "0"], "max_workers"), (["--scale-up-after", "0"], "scale_up_after"),
                       (["--scale-down-after", "-1"], "scale_down_after")):
        done = subprocess.run([sys.executable, "-m", "forkwsgi"] + args + ["tests.apps:app"],
                              capture_output=True, text=True, timeout=30)
        assert done.returncode != 0 and text in done.stderr, (args, done.stderr)
