"""Side-by-side benchmark: forkwsgi vs gunicorn (sync, gthread), waitress, and nginx's static ceiling.

Every server runs loadtests/app.py (nginx: a static `return 200`) on a free
loopback port; wrk (or, for the slow mix, loadtests/latency_client.py) drives
each in turn, rounds alternating the order, and the median of the rounds is
reported, with the peak RSS of each server's whole process tree. Bounded in
time: rows x scenarios x rounds x (--seconds + 1 s of warm-up). The
metrics-scrape scenario is the exception: one server, measured in pairs of
short windows without and with /metrics scraped (see measure_scrape_pairs).

    sudo apt-get install wrk nginx-light        # the load generator and the ceiling
    pip install -e '.[bench]'                   # gunicorn and waitress, benchmark only
    python -m loadtests.bench                   # every scenario; table on stdout, JSON in loadtests/results/
    python -m loadtests.bench --list            # the scenario names
    python -m loadtests.bench --scenarios hello-keepalive,browser-head,slow-mix

On a 2-core machine, --cpus 0:1 pins the servers to core 0 and the load
generator (and this script) to core 1. The server launch table is in
loadtests/servers.py.
"""
import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

from loadtests import servers as srv
from loadtests.servers import Server

HERE = os.path.dirname(os.path.abspath(__file__))

WRK_SCRIPT = """
local body_size = tonumber(os.getenv("BENCH_BODY") or "0")
if body_size > 0 then
  wrk.method = "POST"
  wrk.body = string.rep("u", body_size)
  wrk.headers["Content-Type"] = "application/octet-stream"
end
if os.getenv("BENCH_CLOSE") == "1" then
  wrk.headers["Connection"] = "close"
end
if os.getenv("BENCH_FRESH_IDS") == "1" then
  -- X-Request-Id and traceparent new with every request, as a load balancer or a mesh sends them.
  -- Made cheaply (two string.format calls; the rest of the head is made once), so that the row
  -- measures the server: a head rebuilt and ids drawn a hex digit at a time took most of wrk's core.
  local rand = math.random
  local prefix, middle, suffix, id_first
  local function split_head()
    wrk.headers["X-Request-Id"] = "\\1"
    wrk.headers["traceparent"] = "\\2"
    local head = wrk.format()
    local i, j = head:find("\\1", 1, true), head:find("\\2", 1, true)
    id_first = i < j
    local low, high = math.min(i, j), math.max(i, j)
    prefix, middle, suffix = head:sub(1, low - 1), head:sub(low + 1, high - 1), head:sub(high + 1)
  end
  request = function()
    if not prefix then
      split_head()
    end
    local id = string.format("%08x-%04x-4%03x-a%03x-%08x%04x", rand(0, 0x7fffffff), rand(0, 0xffff),
      rand(0, 0xfff), rand(0, 0xfff), rand(0, 0x7fffffff), rand(0, 0xffff))
    local trace = string.format("00-%08x%08x%08x%08x-%08x%08x-01", rand(0, 0x7fffffff), rand(0, 0x7fffffff),
      rand(0, 0x7fffffff), rand(0, 0x7fffffff), rand(0, 0x7fffffff), rand(0, 0x7fffffff))
    if id_first then
      return prefix .. id .. middle .. trace .. suffix
    end
    return prefix .. trace .. middle .. id .. suffix
  end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH {"requests": %d, "duration_us": %d, "socket_errors": %d, "non2xx": %d, '
    .. '"p50_us": %d, "p99_us": %d}\\n', summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout, e.status, latency:percentile(50), latency:percentile(99)))
end
"""

# A scraper that costs the load generator's core almost nothing: one connection, a pause between requests.
SCRAPE_SCRIPT = """
local pause_ms = tonumber(os.getenv("BENCH_SCRAPE_PAUSE_MS"))
delay = function() return pause_ms end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH {"requests": %d, "duration_us": %d, "errors": %d}\\n', summary.requests,
    summary.duration, e.connect + e.read + e.write + e.timeout + e.status))
end
"""

# What Chrome 131 on Windows sends for a page navigation, less the sec-ch-ua/sec-fetch lines.
BROWSER_HEAD = (
    "Host: app.example.com",
    "User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,"
    "application/signed-exchange;v=b3;q=0.7",
    "Accept-Language: en-US,en;q=0.9",
    "Accept-Encoding: gzip, deflate, br, zstd",
    "Cookie: sessionid=8f2k1m9x7q3w5e6r0t4y2u8i; csrftoken=Zq3Lx9Vb7Nc2Mk5Jh8Gf1Ds4",
    "Connection: keep-alive",
)
# The same request as a load balancer forwards it.
PROXY_HEAD = BROWSER_HEAD + (
    "X-Forwarded-For: 203.0.113.195",
    "X-Forwarded-Proto: https",
    "X-Request-Id: 9b2c7f4e-1a3d-4e8b-b6f0-5c2d8e7a1f93",
    "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
)


def big_cookie(size=4096):
    """A Cookie header whose value is exactly `size` bytes of name=value pairs, like an ad-laden site's."""
    pairs = []
    while len("; ".join(pairs)) < size:
        pairs.append("c%02d=%s" % (len(pairs), hashlib.sha256(b"%d" % len(pairs)).hexdigest()))
    value = "; ".join(pairs)[:size]
    return "Cookie: " + value[:-1] + "x" if value.endswith((";", " ", "=")) else "Cookie: " + value


def default_rows(args):
    """The original table: every server with --workers, gthread and waitress with 4 threads."""
    w = args.workers
    return [Server("forkwsgi", w), Server("granian", w), Server("uwsgi", w), Server("gunicorn sync", w),
            Server("gunicorn gthread", w, 4), Server("waitress", threads=4), Server("nginx return 200", w)]


def django_rows(args):
    """A real framework: forkwsgi against granian, uWSGI and gunicorn sync on a trivial Django view."""
    w = args.workers
    return [Server(kind, w, app=srv.DJANGO_APP) for kind in ("forkwsgi", "granian", "uwsgi", "gunicorn sync")]


def slow_mix_rows(args):
    """-w 4 everywhere, then the same four behind nginx with upstream keepalive."""
    w = args.mix_workers
    direct = [Server("forkwsgi", w), Server("forkwsgi", w, 4, label="forkwsgi --threads 4"),
              Server("gunicorn sync", w), Server("gunicorn gthread", w, 4), Server("waitress", threads=4)]
    return direct + [Server(s.kind, s.workers, s.threads, via_nginx=True,
                            label=s.label and s.label + " via nginx") for s in direct]


def threads_db_rows(args):
    """16 threads in all, waiting 50 ms on a 'database' per request."""
    return [Server("forkwsgi", 2, 8, label="forkwsgi -w 2 --threads 8"),
            Server("gunicorn gthread", 2, 8, label="gunicorn gthread -w 2 --threads 8"),
            Server("waitress", threads=16, label="waitress --threads 16")]


def tls_rows(args):
    """The same certificate for every server; waitress serves no TLS."""
    w = args.workers
    return [Server("forkwsgi", w, tls=True), Server("gunicorn sync", w, tls=True),
            Server("gunicorn gthread", w, 4, tls=True), Server("nginx return 200", w, tls=True)]


def threads_hello_rows(args):
    """Every thread busy, 50 connections, two workers at least: hand-offs between saturated workers
    must not make tails (the --no-handoff row is the reference)."""
    w = max(2, args.workers)
    return [Server("forkwsgi", w, 4, label="forkwsgi -w %d --threads 4" % w),
            Server("forkwsgi", w, 4, handoff=False, label="forkwsgi -w %d --threads 4 --no-handoff" % w),
            Server("gunicorn gthread", w, 4, label="gunicorn gthread -w %d --threads 4" % w),
            Server("forkwsgi", w, label="forkwsgi -w %d (event loop, no threads)" % w)]


def metrics_rows(args):
    """One forkwsgi with --metrics-bind, measured in pairs of windows without and with scraping."""
    return [Server("forkwsgi", args.workers, metrics=True, scrape_hz=100, label="forkwsgi --metrics-bind")]


@dataclass(frozen=True)
class Scenario:
    key: str                      # the command-line name
    title: str                    # the table heading and JSON key
    path: str = "/"
    connections: int = 10
    close: bool = False           # Connection: close on every request
    fresh_ids: bool = False       # X-Request-Id and traceparent new with every request
    body: int = 0                 # POST body bytes
    headers: Tuple[str, ...] = ()
    rows: Callable = default_rows
    driver: str = "wrk"           # "wrk"; "mix" for loadtests/latency_client.py; "pairs" for scrape pairs
    vs_hello: bool = False        # also compare each row with its own hello keep-alive row
    capacity_rps: Optional[float] = None  # the theoretical ceiling, when the app sleeps
    tls: bool = False             # https: the rows serve TLS


SCENARIOS = [
    Scenario("hello-keepalive", "hello keep-alive"),
    Scenario("hello-close", "hello no keep-alive", close=True),
    Scenario("64k", "64 KiB response", path="/64k"),
    Scenario("upload", "1 MiB POST upload", path="/upload", connections=4, body=1 << 20),
    Scenario("100-connections", "100 connections", connections=100),
    Scenario("browser-head", "browser head", headers=BROWSER_HEAD, vs_hello=True),
    Scenario("proxy-head", "proxy head", headers=PROXY_HEAD, vs_hello=True),
    Scenario("proxy-head-ids", "proxy head, ids new each request", headers=PROXY_HEAD, fresh_ids=True,
             vs_hello=True),
    Scenario("cookie-4k", "4 KB cookie", headers=(big_cookie(),), vs_hello=True),
    Scenario("django", "Django trivial view", path="/hello", rows=django_rows),
    Scenario("slow-mix", "slow mix", rows=slow_mix_rows, driver="mix"),
    Scenario("threads-50ms", "threads, 50 ms app", path="/sleep?0.05", connections=32, rows=threads_db_rows,
             capacity_rps=16 / 0.05),
    Scenario("threads-hello", "threads hello, 50 connections", connections=50, rows=threads_hello_rows),
    Scenario("tls-keepalive", "TLS keep-alive", rows=tls_rows, tls=True),
    Scenario("tls-close", "TLS new connection per request", rows=tls_rows, tls=True, close=True),
    Scenario("metrics-scrape", "hello keep-alive while scraping /metrics", rows=metrics_rows, driver="pairs"),
]
HELLO = "hello-keepalive"


def run_wrk(port, scenario, seconds, threads, script, cpus):
    env = dict(os.environ, BENCH_BODY=str(scenario.body), BENCH_CLOSE="1" if scenario.close else "0",
               BENCH_FRESH_IDS="1" if scenario.fresh_ids else "0")
    argv = ["wrk", "-t%d" % threads, "-c%d" % scenario.connections, "-d%ds" % seconds, "--timeout", "5s",
            "-s", script]
    for header in scenario.headers:
        argv += ["-H", header]
    argv.append("%s://127.0.0.1:%d%s" % ("https" if scenario.tls else "http", port, scenario.path))
    data = _bench_line(srv.pinned(argv, cpus), env, seconds)
    data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
    return data


@contextmanager
def scraping(port, hz, seconds, cpus, workdir):
    """While the block runs, a wrk on the load cores scrapes port's /metrics hz times a second (one
    keep-alive connection, pausing between requests: little client CPU); yields a dict of its rate after."""
    result = {}
    script = os.path.join(workdir, "scrape.lua")
    with open(script, "w") as handle:
        handle.write(SCRAPE_SCRIPT)
    env = dict(os.environ, BENCH_SCRAPE_PAUSE_MS=str(round(1000 / hz)))
    argv = srv.pinned(["wrk", "-t1", "-c1", "-d%ds" % seconds, "--timeout", "5s", "-s", script,
                       "http://127.0.0.1:%d/metrics" % port], cpus)
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield result
        out, err = proc.communicate(timeout=seconds + 30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for line in out.splitlines():
        if line.startswith("BENCH "):
            data = json.loads(line[6:])
            result.update(data, rps=data["requests"] / (data["duration_us"] / 1e6))
            return
    raise RuntimeError("the scraper printed no result: %s" % err.strip()[-300:])


def run_mix(port, seconds, args):
    argv = [sys.executable, os.path.join(HERE, "latency_client.py"), "--port", str(port),
            "--seconds", str(seconds), "--connections", str(args.mix_connections),
            "--interval-ms", str(args.mix_interval_ms), "--slow-fraction", str(args.mix_slow_fraction),
            "--slow-path", "/sleep?%g" % (args.mix_slow_ms / 1000)]
    return _bench_line(srv.pinned(argv, args.wrk_cpus), os.environ, seconds)


def _bench_line(argv, env, seconds):
    try:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        raise RuntimeError("%s did not finish in %d s" % (os.path.basename(argv[0]), seconds + 30)) from None
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH "):
            return json.loads(line[6:])
    raise RuntimeError("%s printed no result: %s" % (os.path.basename(argv[0]), proc.stderr.strip()[-300:]))


def measure(rows, scenario, args, script):
    """One load run per row; servers start fresh so no state carries over."""
    results = {}
    for server in rows:
        try:
            with srv.launch(server, args.server_cpus) as running:
                load(running.port, scenario, args, script, 1, 1)  # warm-up
                with running.measuring():
                    result = load(running.port, scenario, args, script, args.seconds, args.threads)
                if not result["requests"]:
                    print("  %s: %s completed no request%s" % (scenario.title, server.name, running.stderr_tail()),
                          file=sys.stderr)
        except RuntimeError as exc:
            print("  %s: %s failed: %s" % (scenario.title, server.name, exc), file=sys.stderr)
            continue
        result["rss_mib"] = running.server_rss.peak_mib
        if running.proxy_rss is not None:
            result["proxy_rss_mib"] = running.proxy_rss.peak_mib
        results[server.name] = result
    return results


def load(port, scenario, args, script, seconds, threads):
    if scenario.driver == "mix":
        return run_mix(port, seconds, args)
    return run_wrk(port, scenario, seconds, threads, script, args.wrk_cpus)


def measure_scrape_pairs(server, scenario, args, script):
    """The VM's speed drifts by more than the effect, so: one server, and pairs of short windows, unscraped
    and scraped in alternating order; the cost is the median of the pairs' ratios. Then the same with the
    scrapes answered by loadtests/floor_server.py on the server cores: the least any answering process costs."""
    with srv.launch(server, args.server_cpus) as running:
        load(running.port, scenario, args, script, 1, 1)  # warm-up
        url = "http://127.0.0.1:%d/metrics" % running.metrics_port
        size = len(urllib.request.urlopen(url, timeout=5).read())
        floor_port = srv.free_port()
        floor = subprocess.Popen(srv.pinned([sys.executable, os.path.join(HERE, "floor_server.py"), "--port",
                                             str(floor_port), "--size", str(size)], args.server_cpus))
        try:
            srv.wait_listening(floor_port, floor)
            with running.measuring():
                pairs = {"master": _scrape_pairs(running, running.metrics_port, server.scrape_hz, scenario, args,
                                                 script),
                         "floor": _scrape_pairs(running, floor_port, server.scrape_hz, scenario, args, script)}
        finally:
            floor.terminate()
            floor.wait()
    summary = {}
    for name, runs in (("unscraped", pairs["master"]["plain"]),
                       ("scraped %d/s" % server.scrape_hz, pairs["master"]["scraped"]),
                       ("floor server scraped %d/s instead" % server.scrape_hz, pairs["floor"]["scraped"])):
        summary[name] = {key: statistics.median(run[key] for run in runs)
                         for key, value in runs[0].items() if isinstance(value, (int, float))}
        summary[name].update(server=server, rss_mib=running.server_rss.peak_mib)
    for key, name in (("master", "scraped %d/s" % server.scrape_hz),
                      ("floor", "floor server scraped %d/s instead" % server.scrape_hz)):
        ratios = pairs[key]["ratios"]
        summary[name].update(pair_ratio=statistics.median(ratios), pair_ratio_low=min(ratios),
                             pair_ratio_high=max(ratios), scrapes_per_s=statistics.median(pairs[key]["rates"]),
                             pairs=len(ratios), body_bytes=size)
    return summary


def _scrape_pairs(running, port, hz, scenario, args, script):
    """args.scrape_pairs pairs of load windows on running, one of each pair while port is scraped hz/s."""
    found = {"plain": [], "scraped": [], "ratios": [], "rates": []}
    for pair in range(args.scrape_pairs):
        got = {}
        for scrape in ((False, True) if pair % 2 == 0 else (True, False)):
            if scrape:
                with scraping(port, hz, args.pair_seconds, args.wrk_cpus, running.workdir) as scrapes:
                    got[scrape] = load(running.port, scenario, args, script, args.pair_seconds, args.threads)
                found["rates"].append(scrapes["rps"])
                got[scrape]["non2xx"] += scrapes["errors"]
            else:
                got[scrape] = load(running.port, scenario, args, script, args.pair_seconds, args.threads)
        found["plain"].append(got[False])
        found["scraped"].append(got[True])
        found["ratios"].append(got[True]["rps"] / got[False]["rps"])
    return found


def print_pairs_table(scenario, summary, args):
    if not summary:
        return
    _header(scenario.title, ["forkwsgi --metrics-bind", "req/s (median)", "p50 ms", "p99 ms", "errors",
                             "peak RSS MiB", "scraped ÷ unscraped, median of pairs"])
    for name, row in summary.items():
        ratio_cell = ("%.3f (%.3f to %.3f)" % (row["pair_ratio"], row["pair_ratio_low"], row["pair_ratio_high"])
                      if "pair_ratio" in row else "-")
        print("| %s | %.0f | %.2f | %.2f | %d | %.0f | %s |" % (
            name, row["rps"], row["p50_us"] / 1000, row["p99_us"] / 1000, row["socket_errors"] + row["non2xx"],
            row["rss_mib"], ratio_cell))
    row = next(row for row in summary.values() if "pair_ratio" in row)
    print("\n%d pairs of %d s windows on one server, alternating which comes first; /metrics (%d bytes) scraped "
          "%.0f times a second over one keep-alive connection. The floor row: the same scrapes answered instead "
          "by loadtests/floor_server.py (a select() loop sending %d bytes) on the server cores."
          % (row["pairs"], args.pair_seconds, row["body_bytes"], row["scrapes_per_s"], row["body_bytes"]))


def summarize(rounds, rows):
    summary = {}
    for server in rows:
        runs = [r[server.name] for r in rounds if server.name in r]
        if runs:
            summary[server.name] = {key: statistics.median(run[key] for run in runs)
                                    for key, value in runs[0].items() if isinstance(value, (int, float))}
            summary[server.name]["server"] = server
    return summary


def run_scenario(scenario, rows, args, script, context):
    kinds, threads_ok = context["kinds"], context["forkwsgi_threads"]
    runnable = []
    for server in rows:
        reason = srv.unavailable_reason(server, kinds, threads_ok)
        if reason:
            print("  %s: skipping %s: %s" % (scenario.title, server.name, reason), file=sys.stderr)
        else:
            runnable.append(server)
    if scenario.driver == "pairs":
        return measure_scrape_pairs(runnable[0], scenario, args, script) if runnable else {}
    rounds = []
    for round_number in range(args.rounds):
        order = runnable if round_number % 2 == 0 else runnable[::-1]
        rounds.append(measure(order, scenario, args, script))
    return summarize(rounds, runnable)


def base_name(rows, server):
    """The row this one is compared with: the scenario's first forkwsgi row on the same path (direct or
    via nginx), whether or not it ran."""
    return next((s.name for s in rows if s.kind == "forkwsgi" and s.via_nginx == server.via_nginx), None)


def fmt_ratio(value):
    return "-" if value is None else "%.2f" % value


def ratio(a, b):
    return a / b if a and b else None


def add_ratios(scenario, rows, summary, hello):
    """Each row's ratio to its forkwsgi row, to its own hello keep-alive row, to the capacity."""
    for name, row in summary.items():
        base = name != base_name(rows, row["server"]) and summary.get(base_name(rows, row["server"]))
        if scenario.driver == "mix":  # the offered load is fixed: compare the fast requests' p99
            row["p99_vs_forkwsgi"] = ratio(row["fast_p99_us"], base and base["fast_p99_us"])
        else:
            row["forkwsgi_vs_this"] = ratio(base and base["rps"], row["rps"])
        if scenario.vs_hello and hello:
            row["vs_own_hello"] = ratio(row["rps"], hello.get(name, {}).get("rps"))
        if scenario.capacity_rps:
            row["of_capacity"] = row["rps"] / scenario.capacity_rps


def print_wrk_table(scenario, summary, hello):
    columns = ["server", "req/s", "p50 ms", "p99 ms", "errors", "peak RSS MiB", "forkwsgi ÷ this, req/s"]
    if scenario.vs_hello and hello:
        columns.append("÷ own hello keep-alive, req/s")
    if scenario.capacity_rps:
        columns.append("of %.0f req/s" % scenario.capacity_rps)
    _header(scenario.title, columns)
    for name, row in summary.items():
        cells = ["%.0f" % row["rps"], "%.2f" % (row["p50_us"] / 1000), "%.2f" % (row["p99_us"] / 1000),
                 "%d" % (row["socket_errors"] + row["non2xx"]), "%.0f" % row["rss_mib"],
                 fmt_ratio(row["forkwsgi_vs_this"])]
        if scenario.vs_hello and hello:
            cells.append(fmt_ratio(row["vs_own_hello"]))
        if scenario.capacity_rps:
            cells.append("%.0f%%" % (100 * row["of_capacity"]))
        print("| %s | %s |" % (name, " | ".join(cells)))
    mine = summary.get("forkwsgi", {})
    if mine.get("vs_own_hello"):
        print("\nforkwsgi: %.0f req/s here, %.0f req/s on plain hello keep-alive in this run: %.2f×" % (
            mine["rps"], hello["forkwsgi"]["rps"], mine["vs_own_hello"]))


def print_mix_table(scenario, summary, args):
    _header(scenario.title, ["server", "req/s", "fast p50 ms", "fast p99 ms", "fast p99.9 ms", "fast max ms",
                             "slow p50 ms", "errors", "peak RSS MiB", "this ÷ forkwsgi, fast p99"])
    for name, row in summary.items():
        print("| %s | %.0f | %.2f | %.2f | %.2f | %.2f | %.1f | %d | %.0f | %s |" % (
            name, row["rps"], row["fast_p50_us"] / 1000, row["fast_p99_us"] / 1000, row["fast_p999_us"] / 1000,
            row["fast_max_us"] / 1000, row["slow_p50_us"] / 1000, row["socket_errors"] + row["non2xx"],
            row["rss_mib"], fmt_ratio(row["p99_vs_forkwsgi"])))
    print("\n%d keep-alive connections, each sending one request every %g ms (%.0f req/s offered); "
          "%g%% sleep %g ms; forkwsgi and gunicorn -w %d, gthread 4 threads a worker, waitress 4 threads. "
          "Latencies are of the fast "
          "requests only. Via nginx: 1 nginx worker, upstream keepalive 32; peak RSS is the app server's "
          "(nginx's is in the JSON)." % (
              args.mix_connections, args.mix_interval_ms, args.mix_connections * 1000 / args.mix_interval_ms,
              100 * args.mix_slow_fraction, args.mix_slow_ms, args.mix_workers))


def _header(title, columns):
    print("\n## %s" % title)
    print("| %s |" % " | ".join(columns))
    print("|---|%s" % ("---:|" * (len(columns) - 1)))


def select(args):
    scenarios = SCENARIOS
    if args.scenarios:
        wanted = [w.strip().lower() for w in args.scenarios.split(",") if w.strip()]
        known = {s.key: s for s in SCENARIOS}
        known.update({s.title.lower(): s for s in SCENARIOS})
        unknown = [w for w in wanted if w not in known]
        if unknown:
            sys.exit("unknown scenario %s; known: %s" % (", ".join(unknown), ", ".join(s.key for s in SCENARIOS)))
        chosen = {known[w].key for w in wanted}
        scenarios = [s for s in SCENARIOS if s.key in chosen]  # table order: hello keep-alive first
    if args.only:
        scenarios = [s for s in scenarios if any(o in s.title or o in s.key for o in args.only)]
    return scenarios


def keep_servers(rows, servers):
    """The rows whose server kind is in the comma-separated list ``servers`` (all when it is empty)."""
    if not servers:
        return rows
    kinds = {k.strip() for k in servers.split(",") if k.strip()}
    return [row for row in rows if row.kind in kinds]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=1, help="worker count of the default rows")
    parser.add_argument("--seconds", type=int, default=5, help="load duration per run")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; the median is reported")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--cpus", default="0:1", help="SERVER_CPUS:LOAD_CPUS for taskset, '' to not pin")
    parser.add_argument("--scenarios", help="comma-separated scenario names (see --list); default all")
    parser.add_argument("--only", action="append", help="run only scenarios whose name contains this")
    parser.add_argument("--servers", help="comma-separated server kinds to keep in each table (forkwsgi,granian,"
                                          "uwsgi,...); default all")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    mix = parser.add_argument_group("slow mix (loadtests/latency_client.py)")
    mix.add_argument("--mix-workers", type=int, default=4)
    mix.add_argument("--mix-connections", type=int, default=16)
    mix.add_argument("--mix-interval-ms", type=float, default=20.0, help="each connection's request period")
    mix.add_argument("--mix-slow-fraction", type=float, default=0.01)
    mix.add_argument("--mix-slow-ms", type=float, default=200.0)
    pairs = parser.add_argument_group("metrics scrape (pairs of windows on one server)")
    pairs.add_argument("--scrape-pairs", type=int, default=15)
    pairs.add_argument("--pair-seconds", type=int, default=2)
    parser.add_argument("--json", default=os.path.join(HERE, "results", "bench.json"))
    args = parser.parse_args()
    if args.list:
        for s in SCENARIOS:
            print("%-16s %s" % (s.key, s.title))
        return
    args.server_cpus, _, args.wrk_cpus = args.cpus.partition(":")
    scenarios = select(args)
    if any(s.driver == "wrk" for s in scenarios) and not shutil.which("wrk"):
        sys.exit("wrk is not installed: sudo apt-get install wrk")
    if args.wrk_cpus:  # keep this script's RSS sampling off the server cores
        os.sched_setaffinity(0, srv.parse_cpus(args.wrk_cpus))
    context = {"kinds": srv.installed_kinds(), "forkwsgi_threads": srv.forkwsgi_has_threads()}
    workdir = tempfile.mkdtemp(prefix="forkwsgi-bench-")
    script = os.path.join(workdir, "bench.lua")
    with open(script, "w") as handle:
        handle.write(WRK_SCRIPT)
    report = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "python": platform.python_version()},
              "workers": args.workers, "seconds": args.seconds, "rounds": args.rounds,
              "command": " ".join([os.path.basename(sys.executable)] + sys.argv), "scenarios": {}}
    results = {}
    try:
        for scenario in scenarios:
            rows = keep_servers(scenario.rows(args), args.servers)
            summary = results[scenario.key] = run_scenario(scenario, rows, args, script, context)
            if scenario.driver == "pairs":
                print_pairs_table(scenario, summary, args)
            elif scenario.driver == "mix":
                add_ratios(scenario, rows, summary, results.get(HELLO))
                print_mix_table(scenario, summary, args)
            else:
                add_ratios(scenario, rows, summary, results.get(HELLO))
                print_wrk_table(scenario, summary, results.get(HELLO))
            sys.stdout.flush()
            report["scenarios"][scenario.title] = {
                name: dict({k: v for k, v in row.items() if k != "server"}, **_describe(row["server"]))
                for name, row in summary.items()}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as handle:
        json.dump(report, handle, indent=2)
    print("\nJSON written to %s" % args.json)


def _describe(server):
    return {"kind": server.kind, "workers": server.workers, "threads": server.threads,
            "via_nginx": server.via_nginx}


if __name__ == "__main__":
    main()
