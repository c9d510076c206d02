"""keep_freed_heap (forkwsgi/worker/heap.py): freed heap kept for the next body instead of page faults.

The measurements run in fresh subprocesses, so that this test process's
malloc settings stay as they were.
"""
import os
import platform
import subprocess
import sys

import pytest

from forkwsgi.worker.heap import keep_freed_heap

from tests.support.server import ROOT

# What a worker does with a 1 MiB body kept in memory, 200 times: 64 KiB reads kept as pieces,
# joined once, all freed. Prints the minor page faults the loop cost.
LOOP = r"""
import resource, sys
from forkwsgi.worker.heap import keep_freed_heap
if sys.argv[1] == "tuned":
    assert keep_freed_heap() is True, "keep_freed_heap() declined"
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
before = faults()
for i in range(200):
    pieces = [bytes([i % 256]) * 65536 for _ in range(16)]
    body = b"".join(pieces)
    del pieces, body
print(faults() - before)
"""

OWN_TUNING = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES", "LD_PRELOAD",
              "MALLOC_ARENA_MAX", "PYTHONMALLOC")


def page_faults(mode):
    """Minor page faults of LOOP in a fresh process with glibc's own malloc settings."""
    env = {name: value for name, value in os.environ.items() if name not in OWN_TUNING}
    env["PYTHONPATH"] = ROOT
    result = subprocess.run([sys.executable, "-c", LOOP, mode], env=env, cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return int(result.stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt thresholds are glibc's")
def test_freed_heap_is_reused_without_page_faults():
    """glibc gives a freed 1 MiB back to the kernel, and the next one costs a page fault per page:
    with keep_freed_heap() it stays mapped and is used again."""
    untuned = page_faults("untuned")
    tuned = page_faults("tuned")
    assert tuned < untuned / 4, (tuned, untuned)


@pytest.mark.parametrize("environ", [
    {"MALLOC_TRIM_THRESHOLD_": "131072"},
    {"MALLOC_MMAP_THRESHOLD_": "131072"},
    {"MALLOC_TOP_PAD_": "0"},
    {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=131072"},
    {"LD_PRELOAD": "libjemalloc.so.2"},
    {"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"},
], ids=lambda environ: "%s=%s" % next(iter(environ.items())))
def test_leaves_alone_who_tunes_malloc_already(environ):
    """Someone chose malloc's settings, or another malloc: not ours to change (and, declining before
    mallopt, this call changes nothing in this process)."""
    assert keep_freed_heap(dict(environ, PATH="/usr/bin")) is False
