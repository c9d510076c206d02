"""Per-worker counters in shared memory: the worker writes, the master reads.

Like the heartbeat, each worker gets an anonymous shared page (mmap of -1),
made by the master before fork. A request costs a few stores into it: no
syscall, no file, and a lock only when the worker runs app threads (--threads
N > 1), where two threads could otherwise lose an increment.

Layout (native byte order, 8-byte words; ``w`` = word index):

    w 0..575     requests: one counter per (method class m, status class s,
                 duration bucket b) at (m*6 + s)*12 + b, so a request is one
                 increment for both forkwsgi_requests_total and the histogram
                 (methods: METHODS; status: none,1xx..5xx; buckets: BUCKETS, +Inf)
    w 576        double: sum of request durations, seconds
    w 577, 578   request body bytes in, response body bytes out
    w 579, 580   connections handed to a sibling, taken from one
    w 581        gauge: open connections (stored once per loop turn)
    w 582        gauge: 1 once the worker is stopping
    w 583        why the worker retires itself: 0, RETIRE_MAX_REQUESTS, RETIRE_MEMORY, RETIRE_TIMEOUT
    w 584        number of request slots that follow
    w 585        gauge: the worker's USS in bytes, as its --max-worker-memory guard last read it (0: not read)
    w 586..597   queue time: one counter per bucket (BUCKETS, +Inf), counted as the app is called
    w 598        double: sum of queue times, seconds
    w 599        requests shed past --max-queue-time

    bytes 8192 + 288*i: request slot i (one per app thread, at most MAX_SLOTS):
        +0   double   wall-clock start (time.time()); 0.0 when the slot is free
        +8   16s      method (NUL padded)
        +24  256s     request target, truncated

A request is counted right after its response is written (or queued), before
the worker reads the next one, so the counts are exact even across kill -9.
Counters only grow while the worker lives; the master adds a dead worker's
last values to its retired totals, so the sums it exports never go back.

``counters()`` gives the master a flat list in the *logical* order below
(REQUESTS .. SHED), independent of the physical layout.
"""
import bisect
import mmap
import os
import struct
import threading
import time

METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other")
STATUS_CLASSES = ("none", "1xx", "2xx", "3xx", "4xx", "5xx")
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_NB = len(BUCKETS) + 1
_NS = len(STATUS_CLASSES)
_CELLS = len(METHODS) * _NS * _NB  # 576

# logical indexes of counters(): what the master aggregates
REQUESTS = 0  # method x status, 48
DURATION = REQUESTS + len(METHODS) * _NS  # 12 buckets, non-cumulative
DURATION_SUM_US = DURATION + _NB
BYTES_IN = DURATION_SUM_US + 1
BYTES_OUT = BYTES_IN + 1
HANDOFF_GIVEN = BYTES_OUT + 1
HANDOFF_TAKEN = HANDOFF_GIVEN + 1
QUEUE = HANDOFF_TAKEN + 1  # 12 buckets, non-cumulative
QUEUE_SUM_US = QUEUE + _NB
SHED = QUEUE_SUM_US + 1
COUNTERS = SHED + 1

# physical word indexes
_SUM = _CELLS
_BYTES_IN = _SUM + 1
_BYTES_OUT = _BYTES_IN + 1
_PHYSICAL = {HANDOFF_GIVEN: _BYTES_OUT + 1, HANDOFF_TAKEN: _BYTES_OUT + 2}
CONNECTIONS = _BYTES_OUT + 3
STOPPING = CONNECTIONS + 1
RETIRE_REASON = STOPPING + 1
SLOT_COUNT = RETIRE_REASON + 1
UNIQUE_MEMORY = SLOT_COUNT + 1
_QUEUE = UNIQUE_MEMORY + 1
_QUEUE_SUM = _QUEUE + _NB
_PHYSICAL[SHED] = _QUEUE_SUM + 1

RETIRE_MAX_REQUESTS, RETIRE_MEMORY, RETIRE_TIMEOUT = 1, 2, 3
RETIRE_NAMES = {RETIRE_MAX_REQUESTS: "max-requests", RETIRE_MEMORY: "memory", RETIRE_TIMEOUT: "timeout"}

MAX_SLOTS = 16
PATH_BYTES = 256
_SLOT_BASE = 8192
_SLOT_SIZE = 288
_SLOT_TEXT = struct.Struct("16s%ds" % PATH_BYTES)
_PAGE_SIZE = 16384

# (method) -> first cell of its row; a status class adds s*_NB
_METHOD_CELL = {name: index * _NS * _NB for index, name in enumerate(METHODS[:-1])}
_OTHER_CELL = (len(METHODS) - 1) * _NS * _NB
_FIRST_BOUND = BUCKETS[0]

assert (_SUM, _BYTES_IN, _BYTES_OUT, _NB, _SLOT_BASE, _SLOT_SIZE) == (576, 577, 578, 12, 8192, 288)  # as in end()


def _make_end(words, doubles, lock=None, free_slots=None):
    """The per-request counting function, with everything it touches bound as locals.

    One request is one increment of its (method, status class, duration bucket) cell, its
    duration and body sizes added, and its slot freed; a slot of -1 (more app threads than
    slots) is counted without one. With app threads, all of it runs under ``lock``."""
    def end(slot, method, code, body_in, body_out, elapsed, words=words, doubles=doubles,
            cell_of=_METHOD_CELL.get, other=_OTHER_CELL, first=_FIRST_BOUND, bisect_left=bisect.bisect_left,
            buckets=BUCKETS):
        cell = cell_of(method, other) + (code // 100 if code < 600 else 0) * 12
        words[cell + (0 if elapsed <= first else bisect_left(buckets, elapsed))] += 1
        doubles[576] += elapsed
        words[578] += body_out
        if body_in:
            words[577] += body_in
        if slot >= 0:
            doubles[(8192 + slot * 288) >> 3] = 0.0

    if lock is None:
        return end

    def end_locked(slot, method, code, body_in, body_out, elapsed):
        with lock:
            end(slot, method, code, body_in, body_out, elapsed)
            if slot >= 0:
                free_slots.append(slot)
    return end_locked


class WorkerStats:
    """One worker's page. Writers: the worker (begin/end, add, set); reader: the master."""

    def __init__(self, threads=1):
        self.page = mmap.mmap(-1, _PAGE_SIZE)
        self.words = memoryview(self.page).cast("Q")
        self.doubles = memoryview(self.page).cast("d")
        self.slots = max(1, min(threads, MAX_SLOTS))
        self.words[SLOT_COUNT] = self.slots
        self.lock = None
        self.free_slots = None
        self.last_method = self.last_target = None  # slot 0's text: the same request line is not rewritten
        self.end = _make_end(self.words, self.doubles)

    # ----- in the worker

    def setup_threads(self, threads):
        """Called in the worker: with app threads, updates take a lock and slots a free list."""
        if threads > 1:
            self.lock = threading.Lock()
            self.free_slots = list(range(self.slots - 1, -1, -1))
            self.begin = self._begin_locked
            self.end = _make_end(self.words, self.doubles, self.lock, self.free_slots)

    def begin(self, method, target, started, queued=0.0):
        """A request enters the app (inline: slot 0), after ``queued`` seconds of waiting.
        Returns the slot for end()."""
        self._queued(queued)
        if target != self.last_target or method != self.last_method:
            self.last_method, self.last_target = method, target
            _SLOT_TEXT.pack_into(self.page, _SLOT_BASE + 8, method.encode("latin-1", "replace"),
                                 target.encode("latin-1", "replace"))
        self.doubles[_SLOT_BASE >> 3] = started
        return 0

    def _queued(self, queued):
        words = self.words
        words[_QUEUE + (0 if queued <= _FIRST_BOUND else bisect.bisect_left(BUCKETS, queued))] += 1
        self.doubles[_QUEUE_SUM] += queued

    def _begin_locked(self, method, target, started, queued=0.0):
        with self.lock:
            self._queued(queued)
            if not self.free_slots:
                return -1
            slot = self.free_slots.pop()
        offset = _SLOT_BASE + slot * _SLOT_SIZE
        _SLOT_TEXT.pack_into(self.page, offset + 8, method.encode("latin-1", "replace"),
                             target.encode("latin-1", "replace"))
        self.doubles[offset >> 3] = started
        return slot

    def add(self, counter, amount=1):
        """Count an event (HANDOFF_GIVEN, HANDOFF_TAKEN, SHED); from the loop's thread."""
        word = _PHYSICAL[counter]
        if self.lock is None:
            self.words[word] += amount
        else:
            with self.lock:
                self.words[word] += amount

    def set(self, word, value):
        self.words[word] = value

    # ----- in the master

    def counters(self):
        """The counters in logical order (REQUESTS .. SHED)."""
        cells = self.words[:_CELLS].tolist()
        out = [sum(cells[row:row + _NB]) for row in range(0, _CELLS, _NB)]  # REQUESTS: a row's buckets
        out += [sum(cells[bucket::_NB]) for bucket in range(_NB)]  # DURATION: a bucket over all rows
        out += [self.doubles[_SUM] * 1e6, self.words[_BYTES_IN], self.words[_BYTES_OUT],
                self.words[_PHYSICAL[HANDOFF_GIVEN]], self.words[_PHYSICAL[HANDOFF_TAKEN]]]
        out += self.words[_QUEUE:_QUEUE + _NB].tolist()
        out += [self.doubles[_QUEUE_SUM] * 1e6, self.words[_PHYSICAL[SHED]]]
        return out

    def gauge(self, word):
        return self.words[word]

    def requests_served(self):
        return sum(self.words[:_CELLS])

    def running(self):
        """[(method, target, started)] of the requests in the app now."""
        found = []
        for slot in range(min(self.words[SLOT_COUNT], MAX_SLOTS)):
            offset = _SLOT_BASE + slot * _SLOT_SIZE
            started = self.doubles[offset >> 3]
            if not started:
                continue
            method, target = _SLOT_TEXT.unpack_from(self.page, offset + 8)
            if self.doubles[offset >> 3] != started:
                continue  # rewritten while we read: a new request, seen next time
            found.append((method.rstrip(b"\0").decode("latin-1"), target.rstrip(b"\0").decode("latin-1"),
                          started))
        return found

    def close(self):
        try:
            self.words.release()
            self.doubles.release()
            self.page.close()
        except (BufferError, ValueError):
            pass


class MemoryGuard:
    """--max-worker-memory: what the worker alone holds (USS), checked after each request.

    RSS counts the pages a --preload app shares with the master and the siblings, so a limit
    on it retires workers for memory they do not own. USS (its private pages: what its exit
    would free) counts only the worker's own. PSS is not used: it grows when a sibling exits
    (the shared pages are split among fewer), which would retire a worker for a neighbour's exit.

    USS comes from /proc/self/smaps_rollup, which costs milliseconds (the kernel walks the page
    tables), so it is read at most once a second. In between, one pread of /proc/self/statm
    bounds it: USS grows by at most what RSS grew since the last reading, plus pages copied on
    write, which the next reading finds. Only once that bound passes the limit is it read early.
    """

    INTERVAL = 1.0  # seconds between smaps_rollup readings, while the RSS bound stays under the limit

    def __init__(self, limit_mb, clock=time.monotonic, stats=None):
        self.limit = int(limit_mb * 1024 * 1024)
        self.clock = clock
        self.stats = stats  # the worker's WorkerStats page: each reading is published there for the master
        self.fd = -1
        self.rollup_fd = -1
        self.read_at = None
        self.unique = self.rss_then = 0

    def rss(self):
        if self.fd < 0:
            self.fd = os.open("/proc/self/statm", os.O_RDONLY | os.O_CLOEXEC)
        return int(os.pread(self.fd, 128, 0).split()[1]) * mmap.PAGESIZE

    def uss(self):
        """Private bytes from /proc/self/smaps_rollup; RSS where the kernel has none (before 4.14)."""
        try:
            if self.rollup_fd < 0:
                self.rollup_fd = os.open("/proc/self/smaps_rollup", os.O_RDONLY | os.O_CLOEXEC)
            return private_bytes(os.pread(self.rollup_fd, 4096, 0))
        except OSError:
            return self.rss()

    def exceeded(self):
        """The USS in bytes if past the limit, else 0."""
        try:
            rss, now = self.rss(), self.clock()
            if self.read_at is not None and now - self.read_at < self.INTERVAL \
                    and self.unique + rss - self.rss_then <= self.limit:
                return 0
            self.unique, self.rss_then, self.read_at = self.uss(), rss, now
        except (OSError, ValueError, IndexError):
            return 0
        if self.stats is not None:
            self.stats.set(UNIQUE_MEMORY, self.unique)
        return self.unique if self.unique > self.limit else 0


def private_bytes(rollup):
    """USS from the text of a smaps_rollup file: its Private_* lines (kB) in bytes."""
    total = 0
    for line in rollup.split(b"\n"):
        if line.startswith(b"Private_"):
            total += int(line.split()[1])
    return total * 1024


def worker_uss(page, pid):
    """A worker's USS for /metrics and ctl: as its --max-worker-memory guard last read it (free, and
    the very figure the limit is checked against), else read from /proc now (milliseconds: see process_uss)."""
    published = page.gauge(UNIQUE_MEMORY) if page is not None else 0
    return published or process_uss(pid)


def process_uss(pid):
    """Bytes only ``pid`` holds (USS) from /proc/PID/smaps_rollup; None if it is gone or unreadable.

    The kernel walks the process's page tables for it: about 3 ms per 128 MB resident."""
    try:
        with open("/proc/%d/smaps_rollup" % pid, "rb") as handle:
            return private_bytes(handle.read())
    except (OSError, ValueError, IndexError):
        return None


def process_rss(pid):
    """Resident bytes of ``pid`` from /proc/PID/statm; None if it is gone."""
    try:
        with open("/proc/%d/statm" % pid, "rb") as handle:
            return int(handle.read().split()[1]) * mmap.PAGESIZE
    except (OSError, ValueError, IndexError):
        return None
