"""A fixed-rate keep-alive HTTP/1.1 load client that times fast and slow requests apart.

wrk reports one latency distribution; when 1% of requests sleep 200 ms in the
app, that distribution says nothing about what the slow ones do to the fast
ones. This client keeps N keep-alive connections; each sends one request per
--interval-ms on a fixed grid (phases spread across connections), so every
server gets the same offered load. Each request is slow (--slow-path) with
probability --slow-fraction, from a seeded generator per connection, so every
server sees the same sequence. A connection busy past its next slot skips the
missed slots (no catch-up bursts); `skipped` counts them.

Latency runs from just before the request is written to the last body byte,
like wrk's (reconnects are counted, not timed). When the server closes the
connection (Connection: close, e.g. gunicorn sync), the client reconnects.

    python loadtests/latency_client.py --port 8000 --seconds 10     # one JSON line on stdout
"""
import argparse
import asyncio
import gc
import json
import math
import random
import sys
import time

try:
    from asyncio import timeout as _timeout  # Python 3.11+
except ImportError:  # pragma: no cover
    _timeout = None


class Stats:
    def __init__(self):
        self.fast, self.slow = [], []  # latencies, ns
        self.errors = self.non2xx = self.reconnects = self.skipped = 0
        self.error_kinds = {}

    def error(self, exc):
        self.errors += 1
        kind = type(exc).__name__
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1


def build_request(path, host, headers):
    lines = ["GET %s HTTP/1.1" % path, "Host: " + host] + list(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def read_response(reader):
    """One response; returns (status, keep_alive)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    version, status = lines[0].split(" ", 2)[:2]
    length, connection = None, ""
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection":
            connection = value.strip().lower()
        elif name == "transfer-encoding":
            raise ValueError("chunked responses are not supported")
    if length is None:
        raise ValueError("response without Content-Length")
    await reader.readexactly(length)
    keep_alive = "close" not in connection and (version == "HTTP/1.1" or "keep-alive" in connection)
    return int(status), keep_alive


async def exchange(reader, writer, request, timeout):
    writer.write(request)
    if _timeout is not None:
        async with _timeout(timeout):
            return await read_response(reader)
    return await asyncio.wait_for(read_response(reader), timeout)


async def connection(index, args, start, end, stats, fast_request, slow_request):
    rng = random.Random(args.seed * 100003 + index)
    interval = args.interval_ms / 1000
    slot = start + interval * index / args.connections
    reader = writer = None
    loop = asyncio.get_running_loop()
    while slot < end:
        delay = slot - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        slow = rng.random() < args.slow_fraction
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(args.host, args.port)
                stats.reconnects += 1
            began = time.perf_counter_ns()
            status, keep_alive = await exchange(reader, writer, slow_request if slow else fast_request,
                                                args.timeout)
            elapsed = time.perf_counter_ns() - began
            (stats.slow if slow else stats.fast).append(elapsed)
            if not 200 <= status < 300:
                stats.non2xx += 1
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError,
                ValueError) as exc:
            stats.error(exc)
            keep_alive = False
        if not keep_alive and writer is not None:
            writer.close()
            writer = None
        slot += interval
        now = loop.time()
        if slot < now:  # busy past the next slots: skip them, stay on the grid
            missed = int((now - slot) / interval) + 1
            stats.skipped += missed
            slot += missed * interval
    if writer is not None:
        writer.close()


def percentile(sorted_values, pct):
    if not sorted_values:
        return 0
    rank = math.ceil(pct / 100 * len(sorted_values)) - 1  # nearest rank
    return sorted_values[max(0, min(len(sorted_values) - 1, rank))]


async def run(args):
    host = args.host_header or "%s:%d" % (args.host, args.port)
    fast_request = build_request(args.fast_path, host, args.header)
    slow_request = build_request(args.slow_path, host, args.header)
    stats = Stats()
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    end = start + args.seconds
    began = time.monotonic()
    await asyncio.gather(*(connection(i, args, start, end, stats, fast_request, slow_request)
                           for i in range(args.connections)))
    duration = max(time.monotonic() - began - 0.05, 1e-9)
    fast, slow = sorted(stats.fast), sorted(stats.slow)
    completed = len(fast) + len(slow)
    return {
        "requests": completed, "fast": len(fast), "slow": len(slow), "duration_s": duration,
        "rps": completed / duration,
        "offered_rps": args.connections * 1000 / args.interval_ms,
        "socket_errors": stats.errors, "non2xx": stats.non2xx, "error_kinds": stats.error_kinds,
        "connects": stats.reconnects, "skipped_slots": stats.skipped,
        "fast_p50_us": percentile(fast, 50) / 1000, "fast_p99_us": percentile(fast, 99) / 1000,
        "fast_p999_us": percentile(fast, 99.9) / 1000, "fast_max_us": (fast[-1] if fast else 0) / 1000,
        "slow_p50_us": percentile(slow, 50) / 1000, "slow_max_us": (slow[-1] if slow else 0) / 1000,
    }


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--interval-ms", type=float, default=5.0, help="each connection's request period")
    parser.add_argument("--slow-fraction", type=float, default=0.01)
    parser.add_argument("--slow-path", default="/sleep?0.2")
    parser.add_argument("--fast-path", default="/")
    parser.add_argument("--header", action="append", default=[], help="extra request header, 'Name: value'")
    parser.add_argument("--host-header", help="Host header (default HOST:PORT)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per request")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    gc.disable()  # a collection pause would show up as server latency
    result = asyncio.run(run(args))
    sys.stdout.write("BENCH " + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
