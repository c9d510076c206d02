"""Freed heap kept for reuse, where the C library is glibc.

glibc hands a freed block of 128 KiB or more straight back to the kernel
(and trims the heap's free top past a threshold), so the next block of that
size comes back as fresh pages, each a page fault on first touch. A worker
receiving 1 MiB bodies paid about 500 faults a request that way: most of its
CPU, and 4x granian's. Each worker therefore raises both thresholds once, at
boot: blocks up to MMAP_THRESHOLD come from the heap, and up to
TRIM_THRESHOLD of its free top stays mapped, to be used again. A worker can
so hold up to TRIM_THRESHOLD more than it uses (--max-worker-memory counts
it). Anyone who tunes malloc already (MALLOC_*_ variables, GLIBC_TUNABLES, or
another allocator preloaded) is left alone, and so is any other C library.
"""
import ctypes
import os

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 4 << 20  # a request body (up to 1 MiB in memory) and its reads stay under it
TRIM_THRESHOLD = 32 << 20
OWN_TUNING = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES")


def keep_freed_heap(environ=os.environ):
    """Raise glibc's mmap and trim thresholds for this process; True if done."""
    if any(name in environ for name in OWN_TUNING) or "malloc" in environ.get("LD_PRELOAD", ""):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
