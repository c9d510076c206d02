"""How many CPUs this process may use, for ``-w auto``: the container's CPU quota, else its affinity.

In a container, os.cpu_count() is the host's CPUs, while the cgroup's CPU quota
(Kubernetes' CPU limit, docker --cpus) is what the server may actually use:
workers beyond it only queue for the CPU and cost a whole app's memory each.
The quota is read from cgroup v2's ``cpu.max`` ("150000 100000", or "max"), or
cgroup v1's ``cpu.cfs_quota_us`` (-1: none) over ``cpu.cfs_period_us``, in the
process's own cgroup (from /proc/self/cgroup) and each of its ancestors: the
smallest applies. A fraction of a CPU rounds up (1.5 CPUs: 2 workers).
"""
import math
import os

from forkwsgi.logs import log

CGROUP_ROOT = "/sys/fs/cgroup"
SELF_CGROUP = "/proc/self/cgroup"
V1_CPU_MOUNTS = ("cpu", "cpu,cpuacct", "cpuacct,cpu")  # where distributions mount the v1 cpu controller


def cgroup_paths(text):
    """(cgroup v2 path, cgroup v1 cpu controller path) from /proc/self/cgroup's text; None where absent."""
    v2 = v1 = None
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        number, controllers, path = parts
        if number == "0" and controllers == "":
            v2 = path
        elif "cpu" in controllers.split(","):
            v1 = path
    return v2, v1


def _ancestors(path):
    """``path`` and each cgroup above it, up to the root: "/a/b" -> "a/b", "a", ""."""
    parts = [part for part in path.split("/") if part]
    return ["/".join(parts[:length]) for length in range(len(parts), -1, -1)]


def _read(path):
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return None


def v2_quota(root, path):
    """(CPUs, file) of the smallest cpu.max quota on ``path``'s way to the root; None if unlimited."""
    found = None
    for cgroup in _ancestors(path):
        name = os.path.join(root, cgroup, "cpu.max")
        fields = (_read(name) or "max").split()
        if fields[0] != "max" and len(fields) == 2 and int(fields[1]) > 0:
            cpus = int(fields[0]) / int(fields[1])
            if found is None or cpus < found[0]:
                found = (cpus, name)
    return found


def v1_quota(root, path):
    """(CPUs, file) of the smallest cpu.cfs_quota_us on ``path``'s way to the mount's root; None if unlimited.

    Without a cgroup namespace, a container sees its host path but has its own cgroup mounted
    at the root: walking up reaches it."""
    found = None
    for mount in V1_CPU_MOUNTS:
        for cgroup in _ancestors(path):
            directory = os.path.join(root, mount, cgroup)
            quota, period = _read(os.path.join(directory, "cpu.cfs_quota_us")), \
                _read(os.path.join(directory, "cpu.cfs_period_us"))
            if quota is None or period is None or int(quota) <= 0 or int(period) <= 0:
                continue
            cpus = int(quota) / int(period)
            if found is None or cpus < found[0]:
                found = (cpus, os.path.join(directory, "cpu.cfs_quota_us"))
        if found is not None:
            return found
    return found


def cpu_quota(root=CGROUP_ROOT, self_cgroup=SELF_CGROUP):
    """(CPUs, file it came from) of this process's cgroup CPU quota; None when there is none or it is unreadable."""
    text = _read(self_cgroup)
    if text is None:
        return None
    v2, v1 = cgroup_paths(text)
    try:
        return (v2 is not None and v2_quota(root, v2)) or (v1 is not None and v1_quota(root, v1)) or None
    except ValueError:  # a file we do not understand: no quota rather than a wrong one
        return None


def available_cpus(root=CGROUP_ROOT, self_cgroup=SELF_CGROUP, affinity=None):
    """(CPUs, how it was found): the cgroup quota rounded up, else (or if fewer) the CPUs we may run on."""
    if affinity is None:
        affinity = len(os.sched_getaffinity(0))
    quota = cpu_quota(root, self_cgroup)
    if quota is None:
        return affinity, "the %d CPUs this process may run on (sched_getaffinity; no cgroup CPU quota)" % affinity
    cpus = max(1, math.ceil(quota[0] - 1e-9))
    if cpus > affinity:
        return affinity, "the %d CPUs this process may run on (sched_getaffinity), fewer than the cgroup " \
                         "CPU quota of %g (%s)" % (affinity, quota[0], quota[1])
    return cpus, "the cgroup CPU quota of %g CPUs (%s), rounded up" % (quota[0], quota[1])


def resolve_workers(workers, root=CGROUP_ROOT, self_cgroup=SELF_CGROUP, affinity=None):
    """The worker count for the ``workers`` setting: itself, or for "auto" the CPUs available, logged."""
    if workers != "auto":
        return workers
    count, how = available_cpus(root, self_cgroup, affinity)
    log.info("workers: auto = %d, from %s", count, how)
    return count
