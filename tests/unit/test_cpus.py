"""-w auto: the worker count from the cgroup CPU quota (v2 cpu.max, v1 cfs quota), else the CPU affinity.

The cgroup tests point cpus.py at fixture files (a fake /sys/fs/cgroup and /proc/self/cgroup);
the end-to-end tests start real servers on this machine.
"""
import logging

import pytest

from forkwsgi.config import cpus
from forkwsgi.config.settings import ConfigError, validate

V2_SELF = "0::/kubepods/pod1/app\n"
V1_SELF = "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n"


def cgroup_files(tmp_path, self_cgroup, files):
    """A fake cgroup tree under tmp_path: {relative path: text}; returns (root, self cgroup file)."""
    root = tmp_path / "cgroup"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    proc = tmp_path / "self-cgroup"
    proc.write_text(self_cgroup)
    return str(root), str(proc)


def test_v2_quota_of_one_and_a_half_cpus_gives_two_workers(tmp_path):
    root, proc = cgroup_files(tmp_path, V2_SELF, {"kubepods/pod1/app/cpu.max": "150000 100000\n"})
    count, how = cpus.available_cpus(root, proc, affinity=8)
    assert count == 2 and "quota of 1.5" in how and "cpu.max" in how


def test_v2_max_gives_the_affinity_count(tmp_path):
    root, proc = cgroup_files(tmp_path, V2_SELF, {"kubepods/pod1/app/cpu.max": "max 100000\n"})
    count, how = cpus.available_cpus(root, proc, affinity=8)
    assert count == 8 and "sched_getaffinity" in how


def test_v2_smallest_quota_on_the_way_to_the_root_applies(tmp_path):
    root, proc = cgroup_files(tmp_path, V2_SELF, {"kubepods/pod1/app/cpu.max": "max 100000\n",
                                                  "kubepods/pod1/cpu.max": "300000 100000\n",
                                                  "kubepods/cpu.max": "600000 100000\n"})
    assert cpus.available_cpus(root, proc, affinity=8)[0] == 3


def test_v2_in_a_cgroup_namespace_reads_the_root(tmp_path):
    root, proc = cgroup_files(tmp_path, "0::/\n", {"cpu.max": "50000 100000\n"})
    assert cpus.available_cpus(root, proc, affinity=8)[0] == 1  # half a CPU: one worker, never none


def test_v1_cfs_quota(tmp_path):
    root, proc = cgroup_files(tmp_path, V1_SELF, {"cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "250000\n",
                                                  "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n"})
    count, how = cpus.available_cpus(root, proc, affinity=8)
    assert count == 3 and "cpu.cfs_quota_us" in how


def test_v1_host_path_not_mounted_falls_back_to_the_mount_root(tmp_path):
    root, proc = cgroup_files(tmp_path, V1_SELF, {"cpu/cpu.cfs_quota_us": "150000\n",
                                                  "cpu/cpu.cfs_period_us": "100000\n"})
    assert cpus.available_cpus(root, proc, affinity=8)[0] == 2


def test_v1_no_quota_gives_the_affinity_count(tmp_path):
    root, proc = cgroup_files(tmp_path, V1_SELF, {"cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "-1\n",
                                                  "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n"})
    assert cpus.available_cpus(root, proc, affinity=3)[0] == 3


def test_no_cgroup_files_or_garbage_gives_the_affinity_count(tmp_path):
    root, proc = cgroup_files(tmp_path, V2_SELF, {"kubepods/pod1/app/cpu.max": "lots\n"})
    assert cpus.available_cpus(root, proc, affinity=5)[0] == 5
    assert cpus.available_cpus(str(tmp_path / "none"), str(tmp_path / "none"), affinity=5)[0] == 5


def test_quota_above_the_affinity_is_capped_by_it(tmp_path):
    root, proc = cgroup_files(tmp_path, V2_SELF, {"kubepods/pod1/app/cpu.max": "800000 100000\n"})
    count, how = cpus.available_cpus(root, proc, affinity=2)
    assert count == 2 and "fewer than the cgroup CPU quota of 8" in how


def test_resolve_workers_logs_what_it_used(tmp_path, caplog):
    root, proc = cgroup_files(tmp_path, V2_SELF, {"kubepods/pod1/app/cpu.max": "150000 100000\n"})
    with caplog.at_level(logging.INFO, logger="forkwsgi"):
        assert cpus.resolve_workers("auto", root, proc, affinity=8) == 2
        assert cpus.resolve_workers(5, root, proc, affinity=8) == 5
    assert [r.getMessage() for r in caplog.records if "workers: auto" in r.getMessage()] == [
        "workers: auto = 2, from the cgroup CPU quota of 1.5 CPUs (%s/kubepods/pod1/app/cpu.max), rounded up"
        % root]


def test_workers_setting_accepts_auto_and_refuses_other_words():
    assert validate("workers", "auto", "command line") == "auto"
    assert validate("workers", " AUTO ", "environment FORKWSGI_WORKERS") == "auto"
    assert validate("workers", "4", "command line") == 4
    for bad in ("0", "many", "-1", None):
        with pytest.raises(ConfigError):
            validate("workers", bad, "command line")
