"""Side-by-side benchmark: forkwsgi vs gunicorn (sync, gthread), waitress, and nginx's static ceiling.

Every server runs loadtests/app.py (nginx: a static `return 200`) with the same
worker count on a free loopback port; wrk drives each in turn, rounds
alternating, and the median of the rounds is reported. Bounded in time:
servers x scenarios x rounds x --seconds.

    sudo apt-get install wrk nginx-light        # the load generator and the ceiling
    pip install -e '.[bench]'                   # gunicorn and waitress, benchmark only
    python loadtests/bench.py                   # table on stdout, JSON in loadtests/results/

On a 2-core machine, --cpus 0:1 pins the servers to core 0 and wrk to core 1.
"""
import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

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
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH {"requests": %d, "duration_us": %d, "socket_errors": %d, "non2xx": %d, '
    .. '"p50_us": %d, "p99_us": %d}\\n', summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout, e.status, latency:percentile(50), latency:percentile(99)))
end
"""

SCENARIOS = [
    # name, path, connections, close after each request, request body bytes
    ("hello keep-alive", "/", 10, False, 0),
    ("hello no keep-alive", "/", 10, True, 0),
    ("64 KiB response", "/64k", 10, False, 0),
    ("1 MiB POST upload", "/upload", 4, False, 1 << 20),
    ("100 connections", "/", 100, False, 0),
]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port, proc, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited with %s" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start listening on %d" % port)


def nginx_conf(port, workdir, workers):
    return """
worker_processes %d;
daemon off;
pid %s/nginx.pid;
error_log %s/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %s;
  proxy_temp_path %s; fastcgi_temp_path %s; uwsgi_temp_path %s; scgi_temp_path %s;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:%d;
    client_max_body_size 4m;
    location / { return 200 "Hello, world!\\n"; }
  }
}
""" % ((workers, workdir, workdir) + (workdir,) * 5 + (port,))


def available_servers():
    """The servers installed here, forkwsgi first."""
    servers = ["forkwsgi"]
    if _importable("gunicorn"):
        servers += ["gunicorn sync", "gunicorn gthread"]
    if _importable("waitress"):
        servers.append("waitress")
    if _nginx():
        servers.append("nginx return 200")
    return servers


def server_command(name, port, workers, workdir):
    py = sys.executable
    app = "loadtests.app:app"
    bind = "127.0.0.1:%d" % port
    if name == "forkwsgi":
        return [py, "-m", "forkwsgi", "-w", str(workers), "-b", bind, "--log-level", "warning", app]
    if name.startswith("gunicorn"):
        gunicorn = [py, "-m", "gunicorn", "-w", str(workers), "-b", bind, "--log-level", "warning"]
        return gunicorn + (["-k", "gthread", "--threads", "4"] if name.endswith("gthread") else []) + [app]
    if name == "waitress":  # one process: it gets its concurrency from threads
        return [py, "-m", "waitress", "--listen=" + bind, "--threads=4", app]
    path = os.path.join(workdir, "nginx.conf")
    with open(path, "w") as handle:
        handle.write(nginx_conf(port, workdir, workers))
    return [_nginx(), "-c", path, "-p", workdir]


def _nginx():
    return shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


def _importable(module):
    return subprocess.run([sys.executable, "-c", "import " + module], capture_output=True).returncode == 0


def pinned(argv, cpus):
    return (["taskset", "-c", cpus] + argv) if cpus and shutil.which("taskset") else argv


def run_wrk(port, scenario, seconds, threads, script, cpus):
    name, path, connections, close, body = scenario
    env = dict(os.environ, BENCH_BODY=str(body), BENCH_CLOSE="1" if close else "0")
    argv = pinned(["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % seconds, "--timeout", "5s",
                   "-s", script, "http://127.0.0.1:%d%s" % (port, path)], cpus)
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=seconds + 30).stdout
    line = next(l for l in out.splitlines() if l.startswith("BENCH "))
    data = json.loads(line[6:])
    data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
    return data


def measure(servers, scenario, args, script, workdir):
    """One wrk run per server for this scenario; servers start fresh so no state carries over."""
    results = {}
    for name in servers:
        port = free_port()
        argv = server_command(name, port, args.workers, workdir)
        proc = subprocess.Popen(pinned(argv, args.server_cpus), cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=dict(os.environ, PYTHONPATH=ROOT))
        try:
            wait_listening(port, proc)
            run_wrk(port, scenario, 1, 1, script, args.wrk_cpus)  # warm-up
            results[name] = run_wrk(port, scenario, args.seconds, args.threads, script, args.wrk_cpus)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return results


def median_of(rounds, server, key):
    return statistics.median(r[server][key] for r in rounds if server in r)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seconds", type=int, default=5, help="wrk duration per run")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; the median is reported")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--cpus", default="0:1", help="SERVER_CPUS:WRK_CPUS for taskset, '' to not pin")
    parser.add_argument("--only", action="append", help="run only scenarios whose name contains this")
    parser.add_argument("--json", default=os.path.join(HERE, "results", "bench.json"))
    args = parser.parse_args()
    args.server_cpus, _, args.wrk_cpus = args.cpus.partition(":")
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: sudo apt-get install wrk")
    workdir = tempfile.mkdtemp(prefix="forkwsgi-bench-")
    script = os.path.join(workdir, "bench.lua")
    with open(script, "w") as handle:
        handle.write(WRK_SCRIPT)
    servers = available_servers()
    scenarios = [s for s in SCENARIOS if not args.only or any(o in s[0] for o in args.only)]
    report = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "python": platform.python_version()},
              "workers": args.workers, "seconds": args.seconds, "rounds": args.rounds,
              "command": " ".join([os.path.basename(sys.executable)] + sys.argv), "scenarios": {}}
    for scenario in scenarios:
        rounds = []
        for round_number in range(args.rounds):
            order = servers if round_number % 2 == 0 else servers[::-1]
            rounds.append(measure(order, scenario, args, script, workdir))
        summary = {}
        for server in servers:
            summary[server] = {key: median_of(rounds, server, key)
                               for key in ("rps", "p50_us", "p99_us", "socket_errors", "non2xx")}
        report["scenarios"][scenario[0]] = summary
        print_scenario(scenario[0], summary)
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as handle:
        json.dump(report, handle, indent=2)
    print("\nJSON written to %s" % args.json)
    shutil.rmtree(workdir, ignore_errors=True)


def print_scenario(name, summary):
    base = summary.get("forkwsgi", {}).get("rps") or 0
    print("\n## %s" % name)
    print("| server | req/s | p50 ms | p99 ms | errors | forkwsgi ÷ this, req/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for server, row in summary.items():
        ratio = base / row["rps"] if row["rps"] else float("inf")
        print("| %s | %.0f | %.2f | %.2f | %d | %s |" % (
            server, row["rps"], row["p50_us"] / 1000, row["p99_us"] / 1000,
            row["socket_errors"] + row["non2xx"], "-" if server == "forkwsgi" else "%.2f" % ratio))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
