"""Three forkwsgi "hosts" behind nginx, under checked load: rolling upgrade, rolling restart, kill -9.

Each host is a Linux network namespace made by this script, joined to the default namespace by
a veth pair with its own /24 in 10.231.0.0/16 (host side .1, namespace side .2), and running its
own forkwsgi on ADDR:8000 (2 workers, --health-path /healthz, --shutdown-delay 2, a pid file).
nginx, in the default namespace on a free 127.0.0.1 port, balances the three with upstream
keep-alive, passive health checks (max_fails=1 fail_timeout=2s) and
``proxy_next_upstream error timeout http_502 http_503``. tests/support/loadclient.py (keep-alive and
new-connection threads; every body's sha256 is checked) drives nginx while each phase runs:

- ``upgrade``: a rolling USR2 upgrade of every host in turn (USR2, wait for the new master's
  workers, WINCH to the old master, wait for its workers to finish, QUIT to the old master);
- ``restart``: a rolling restart (TERM, which serves --shutdown-delay more seconds and then
  stops gracefully; wait for the exit; start the host again; wait until /healthz says 200);
- ``kill``: SIGKILL to one host's master and workers at once, then start it again.

For each phase it reports the requests sent, the failed ones (lost or wrong, seen by the
client) and those nginx retried on another host (its access log's $upstream_status lists more
than one attempt, like "502, 200"), plus nginx's upstream errors by kind. The rolling phases
should lose nothing; the kill phase is reported, not judged (requests in flight on the killed
host die with it, and nginx may only retry those whose response had not started).

    sudo .venv/bin/python -m loadtests.multihost                 # all phases, about 40 s
    sudo .venv/bin/python -m loadtests.multihost --phases upgrade,restart --json out.json

Needs root (namespaces, veths), iproute2 and nginx; prints why and exits 0 (status 77 with
--strict-skip) where they are missing. Every namespace, veth and process it made is removed
on exit, on Ctrl-C and on TERM. Traffic goes only to 127.0.0.1 and to the addresses inside
its own namespaces.
"""
import argparse
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter

from tests.support.loadclient import LoadClient
from tests.support.nginx import nginx_binary
from tests.support.ports import free_port
from tests.support.processes import children

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PHASES = ("upgrade", "restart", "kill")
PORT = 8000
WORKERS = 2
SHUTDOWN_DELAY = 2.0
FAIL_TIMEOUT = 2  # nginx's fail_timeout: a host that failed once gets no requests for this long
NS_PREFIX = "fwmh-"
SUBNET = "10.231"
SKIP_STATUS = 77

NGINX_CONFIG = """\
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 1024; }}
http {{
    log_format multihost '$msec $status "$upstream_addr" "$upstream_status" "$request_uri"';
    access_log {dir}/access.log multihost;
{temp_paths}
    upstream hosts {{
{servers}
        keepalive 16;
        keepalive_timeout 4s;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://hosts;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_connect_timeout 2s;
            proxy_read_timeout 20s;
            proxy_next_upstream error timeout http_502 http_503;
            proxy_next_upstream_timeout 10s;
            client_max_body_size 0;
        }}
    }}
}}
"""

# nginx creates every compiled-in temp path at start-up: point them all into the temp dir.
_TEMP_PATHS = [("client_body_temp_path", None), ("proxy_temp_path", "proxy"),
               ("fastcgi_temp_path", "fastcgi"), ("uwsgi_temp_path", "uwsgi"), ("scgi_temp_path", "scgi")]


class Skip(Exception):
    """This machine cannot run the scenario (not root, no ip, no nginx, no namespaces)."""


# ----- small helpers

def log(message):
    sys.stderr.write("[multihost %s] %s\n" % (time.strftime("%H:%M:%S"), message))
    sys.stderr.flush()


def wait_for(predicate, timeout, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def run(argv, check=True):
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, timeout=20)
    if check and result.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(argv), result.returncode, result.stderr.strip()))
    return result


def proc_state(pid):
    """The /proc state letter of ``pid`` (R, S, Z, ...), or None once it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def reap(pid):
    """Collect ``pid`` if it is our child (or an orphan adopted by this subreaper); ignore it otherwise."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, OSError):
        pass


def gone(pid):
    reap(pid)
    return proc_state(pid) in (None, "Z", "X")


def kill(pid, sig):
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def set_subreaper():
    """Adopt orphans: after a USR2 upgrade and QUIT to the old master, the new master is orphaned;
    as a subreaper this script becomes its parent, can reap it, and no zombie is left behind."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def http_get(address, path, timeout=1.0):
    """(status, headers text) of GET path on a new connection to ``address``, or (None, error)."""
    try:
        with socket.create_connection(address, timeout=timeout) as sock:
            sock.sendall(("GET %s HTTP/1.1\r\nHost: multihost\r\nConnection: close\r\n\r\n" % path).encode())
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        line = data.split(b"\r\n", 1)[0].split()
        return (int(line[1]) if len(line) > 1 and line[1].isdigit() else None), data.decode("latin-1")
    except OSError as exc:
        return None, repr(exc)


def unavailable_reason():
    """Why this machine cannot run the scenario, or None when it can (root, ip, netns, nginx)."""
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "making network namespaces and veth pairs needs root"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    if nginx_binary() is None:
        return "nginx is not installed (not on PATH nor in /usr/sbin)"
    probe = "%sprobe-%d" % (NS_PREFIX, os.getpid())
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, timeout=20)
    if made.returncode != 0:
        return "cannot make a network namespace: %s" % (made.stderr.strip() or made.returncode)
    try:
        made = subprocess.run(["ip", "netns", "exec", probe, "true"], capture_output=True, text=True, timeout=20)
        if made.returncode != 0:
            return "cannot enter a network namespace: %s" % (made.stderr.strip() or made.returncode)
        veth = "fwp%d" % (os.getpid() % 10 ** 7)
        made = subprocess.run(["ip", "link", "add", veth + "a", "type", "veth", "peer", "name", veth + "b"],
                              capture_output=True, text=True, timeout=20)
        if made.returncode != 0:
            return "cannot make a veth pair: %s" % (made.stderr.strip() or made.returncode)
        subprocess.run(["ip", "link", "del", veth + "a"], capture_output=True, timeout=20)
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=20)
    return None


def remove_stale():
    """Namespaces and veths left by an earlier run of this script that died without cleaning up."""
    listing = run(["ip", "netns", "list"], check=False).stdout
    for line in listing.splitlines():
        name = line.split()[0] if line.split() else ""
        match = re.match(re.escape(NS_PREFIX) + r"(?:probe-)?(\d+)", name)
        if match and int(match.group(1)) != os.getpid() and proc_state(int(match.group(1))) is None:
            log("removing namespace %s left by a run that is gone" % name)
            for pid in netns_pids(name):
                kill(pid, signal.SIGKILL)
            run(["ip", "netns", "del", name], check=False)
    links = run(["ip", "-o", "link", "show"], check=False).stdout
    for name in re.findall(r"^\d+: (fw\d+h\d)[@:]", links, re.M):
        owner = int(re.match(r"fw(\d+)h", name).group(1))
        if owner != os.getpid() and proc_state(owner) is None:
            run(["ip", "link", "del", name], check=False)


def netns_pids(name):
    result = run(["ip", "netns", "pids", name], check=False)
    return [int(pid) for pid in result.stdout.split() if pid.isdigit()]


def free_subnets(count):
    """``count`` third octets N such that 10.231.N.0/24 is used by no address or route here."""
    used = run(["ip", "-4", "-o", "addr", "show"], check=False).stdout + run(["ip", "-4", "route"],
                                                                            check=False).stdout
    taken = {int(n) for n in re.findall(re.escape(SUBNET) + r"\.(\d+)\.", used)}
    start = os.getpid() % 200 + 20  # spread concurrent runs apart
    picks = []
    for offset in range(250):
        n = (start + offset) % 250 + 1
        if n not in taken:
            picks.append(n)
            if len(picks) == count:
                return picks
    raise RuntimeError("no free /24 in %s.0.0/16" % SUBNET)


# ----- one host: a namespace, a veth pair, a forkwsgi

class Host:
    def __init__(self, index, octet, workdir):
        tag = os.getpid()
        self.index = index
        self.name = "host%d" % index
        self.ns = "%s%d-%d" % (NS_PREFIX, tag, index)
        self.veth_out = "fw%dh%d" % (tag, index)  # in the default namespace
        self.veth_in = "fw%dn%d" % (tag, index)   # moved into the host's namespace
        self.gateway = "%s.%d.1" % (SUBNET, octet)
        self.addr = "%s.%d.2" % (SUBNET, octet)
        self.pidfile = os.path.join(workdir, "%s.pid" % self.name)
        self.log_path = os.path.join(workdir, "%s.log" % self.name)
        self.proc_name = "multihost-%d-%s" % (tag, self.name)  # in the process titles
        self.proc = None
        self.made_ns = self.made_veth = False

    def setup(self):
        run(["ip", "netns", "add", self.ns])
        self.made_ns = True
        run(["ip", "link", "add", self.veth_out, "type", "veth", "peer", "name", self.veth_in])
        self.made_veth = True
        run(["ip", "link", "set", self.veth_in, "netns", self.ns])
        run(["ip", "addr", "add", self.gateway + "/24", "dev", self.veth_out])
        run(["ip", "link", "set", self.veth_out, "up"])
        inside = ["ip", "netns", "exec", self.ns]
        run(inside + ["ip", "addr", "add", self.addr + "/24", "dev", self.veth_in])
        run(inside + ["ip", "link", "set", self.veth_in, "up"])
        run(inside + ["ip", "link", "set", "lo", "up"])

    def start(self):
        argv = ["ip", "netns", "exec", self.ns, sys.executable, "-m", "forkwsgi",
                "-b", "%s:%d" % (self.addr, PORT), "-w", str(WORKERS), "--health-path", "/healthz",
                "--shutdown-delay", str(SHUTDOWN_DELAY), "--graceful-timeout", "15",
                "--pid", self.pidfile, "--name", self.proc_name,
                "--forwarded-allow-ips", self.gateway, "tests.fault_apps:app"]
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=ROOT)
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out)

    def master(self):
        """The pid in the pid file (the newest master), or None."""
        try:
            with open(self.pidfile) as handle:
                text = handle.read().strip()
            return int(text) if text.isdigit() else None
        except OSError:
            return None

    def healthy(self):
        return http_get((self.addr, PORT), "/healthz", timeout=0.5)[0] == 200

    def wait_healthy(self, timeout=20.0):
        if not wait_for(self.healthy, timeout, 0.05):
            raise RuntimeError("%s never became healthy:\n%s" % (self.name, self.log_tail()))

    def wait_master(self, timeout=20.0, not_pid=None):
        """The new master's pid once its pid file names it and it has all its workers."""
        def ready():
            pid = self.master()
            if pid is None or pid == not_pid or gone(pid):
                return None
            return pid if len(children(pid)) >= WORKERS else None
        pid = wait_for(ready, timeout, 0.05)
        if not pid:
            raise RuntimeError("%s: no new master with %d workers:\n%s" % (self.name, WORKERS, self.log_tail()))
        return pid

    def kill_everything(self):
        """SIGKILL every process in the namespace (masters, workers, a half-started upgrade)."""
        pids = netns_pids(self.ns) if self.made_ns else []
        if self.proc is not None and self.proc.poll() is None:
            pids.append(self.proc.pid)
        for pid in set(pids):
            kill(pid, signal.SIGKILL)
        for pid in set(pids):
            wait_for(lambda: gone(pid), 5.0)
        if self.proc is not None:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        return sorted(set(pids))

    def teardown(self):
        self.kill_everything()
        if self.made_veth:
            run(["ip", "link", "del", self.veth_out], check=False)  # takes its peer along
        if self.made_ns:
            run(["ip", "netns", "del", self.ns], check=False)
        self.made_ns = self.made_veth = False

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, "rb") as handle:
                return "\n".join(handle.read().decode("utf-8", "replace").splitlines()[-lines:])
        except OSError:
            return ""


# ----- nginx in the default namespace

class Nginx:
    def __init__(self, hosts, workdir):
        self.binary = nginx_binary()
        self.port = free_port()
        self.dir = os.path.join(workdir, "nginx")
        os.makedirs(self.dir)
        self.access_log = os.path.join(self.dir, "access.log")
        self.error_log = os.path.join(self.dir, "error.log")
        info = subprocess.run([self.binary, "-V"], capture_output=True, text=True, timeout=10)
        info = info.stdout + info.stderr
        match = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", info)
        version = tuple(int(part) for part in match.groups()) if match else (0, 0, 0)
        temp_paths = ["    %s %s/%s;" % (directive, self.dir, directive) for directive, module in _TEMP_PATHS
                      if module is None or "--without-http_%s_module" % module not in info]
        servers = ["        server %s:%d max_fails=1 fail_timeout=%ds;" % (host.addr, PORT, FAIL_TIMEOUT)
                   for host in hosts]
        self.config = os.path.join(self.dir, "nginx.conf")
        with open(self.config, "w") as handle:
            handle.write(NGINX_CONFIG.format(dir=self.dir, temp_paths="\n".join(temp_paths),
                                             servers="\n".join(servers), port=self.port))
        argv = [self.binary, "-p", self.dir, "-c", self.config]
        if version >= (1, 19, 5):
            argv += ["-e", self.error_log]
        self._out = open(os.path.join(self.dir, "stderr.log"), "wb")
        self.proc = subprocess.Popen(argv, cwd=self.dir, stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=self._out)

    def wait_ready(self):
        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("nginx exited (%s): %s" % (self.proc.returncode, self.read(self.error_log)))
            return http_get(("127.0.0.1", self.port), "/blob?seed=1&size=10")[0] == 200
        if not wait_for(ready, 15.0, 0.05):
            raise RuntimeError("nginx never served:\n" + self.read(self.error_log))

    @staticmethod
    def read(path, offset=0):
        try:
            with open(path, "rb") as handle:
                handle.seek(offset)
                return handle.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def offsets(self):
        return tuple(os.path.getsize(p) if os.path.exists(p) else 0 for p in (self.access_log, self.error_log))

    def since(self, offsets):
        """What the access and error logs gained since ``offsets``: (retried, 5xx, error kinds, examples)."""
        retried, errors_5xx, examples = 0, 0, []
        for line in self.read(self.access_log, offsets[0]).splitlines():
            match = re.match(r'\S+ (\d+) "([^"]*)" "([^"]*)" "([^"]*)"', line)
            if not match:
                continue
            status, addrs, statuses, uri = match.groups()
            if not uri.startswith(("/blob", "/slow")):
                continue  # our own readiness probe
            if "," in statuses or ":" in statuses:
                retried += 1
                if len(examples) < 5:
                    examples.append("%s -> %s (%s)" % (uri.split("&")[0], statuses, addrs))
            if status.startswith("5"):
                errors_5xx += 1
        kinds = Counter()
        for line in self.read(self.error_log, offsets[1]).splitlines():
            if "[error]" in line or "[warn]" in line:
                message = line.split("*", 1)[-1].split(", client:")[0]
                message = re.sub(r"^\d+ ", "", message)
                kinds[re.sub(r"\d+\.\d+\.\d+\.\d+:\d+|\(\d+: ", "", message)[:70]] += 1
        return retried, errors_5xx, kinds, examples

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._out.close()


# ----- the phases

def rolling_upgrade(hosts, pause):
    """USR2 each host in turn; WINCH then QUIT its old master once the new one has its workers."""
    for host in hosts:
        old = host.master()
        log("%s: USR2 to master %s" % (host.name, old))
        kill(old, signal.SIGUSR2)
        new = host.wait_master(not_pid=old)
        if not wait_for(lambda: os.path.exists(host.pidfile + ".oldbin"), 5.0):
            raise RuntimeError("%s: no .oldbin pid file after USR2" % host.name)
        time.sleep(0.5)  # the new workers import the app
        old_workers = [pid for pid in children(old) if pid != new]  # the new master is the old one's child
        log("%s: new master %d with workers %s; WINCH to %d (workers %s)" % (
            host.name, new, children(new), old, old_workers))
        kill(old, signal.SIGWINCH)
        if not wait_for(lambda: not set(old_workers) & set(children(old)), 20.0, 0.05):
            raise RuntimeError("%s: old workers %s still run after WINCH" % (host.name, children(old)))
        log("%s: QUIT to old master %d" % (host.name, old))
        kill(old, signal.SIGQUIT)
        if not wait_for(lambda: gone(old), 10.0, 0.05):
            raise RuntimeError("%s: old master %d still runs after QUIT" % (host.name, old))
        host.wait_healthy()
        time.sleep(pause)


def rolling_restart(hosts, pause):
    """TERM each host in turn (it serves --shutdown-delay more, then stops gracefully), start it again."""
    for host in hosts:
        pid = host.master()
        log("%s: TERM to master %s" % (host.name, pid))
        started = time.monotonic()
        kill(pid, signal.SIGTERM)
        if not wait_for(lambda: gone(pid), SHUTDOWN_DELAY + 20.0, 0.05):
            raise RuntimeError("%s: master %d still runs after TERM" % (host.name, pid))
        for worker in netns_pids(host.ns):  # a leftover here would be a bug, reported below
            log("%s: process %d outlived its master" % (host.name, worker))
        log("%s: stopped after %.1fs; starting it again" % (host.name, time.monotonic() - started))
        host.start()
        host.wait_master()
        host.wait_healthy()
        # nginx marked the host failed when it stopped accepting: wait for fail_timeout so it is back
        # in the rotation before the next host goes away.
        time.sleep(FAIL_TIMEOUT + pause)


def kill_one(hosts, pause):
    """SIGKILL one host's master and workers at once; start it again after a while."""
    host = hosts[len(hosts) // 2]
    killed = host.kill_everything()
    log("%s: SIGKILL to %s" % (host.name, killed))
    time.sleep(1.0 + pause)
    host.start()
    host.wait_master()
    host.wait_healthy()
    time.sleep(FAIL_TIMEOUT + pause)


PHASE_FUNCTIONS = {"upgrade": rolling_upgrade, "restart": rolling_restart, "kill": kill_one}


def run_phase(name, hosts, nginx, settle, pause, load):
    offsets = nginx.offsets()
    client = LoadClient(nginx.port, seconds=600.0, timeout=20.0, **load).start()
    try:
        if not client.wait_ok(50, timeout=10.0):
            raise RuntimeError("load never got going: %s" % client.failures())
        time.sleep(settle)
        started = time.monotonic()
        PHASE_FUNCTIONS[name](hosts, pause)
        took = time.monotonic() - started
        time.sleep(settle)
    finally:
        client.stop(join_timeout=25.0)
    time.sleep(0.2)  # nginx writes the access log line as a request ends
    counts = client.counts()
    retried, errors_5xx, kinds, examples = nginx.since(offsets)
    return {
        "phase": name, "seconds": round(took, 1),
        "sent": counts["sent"], "ok": counts["ok"], "failed": counts["lost"] + counts["wrong"],
        "lost": counts["lost"], "wrong": counts["wrong"], "refused_by_nginx": counts["refused"],
        "retried_by_lb": retried, "lb_5xx": errors_5xx,
        "lb_errors": dict(kinds.most_common(8)), "retried_examples": examples,
        "failures": client.failures(),
        "summary": client.summary(),
    }


def check_leftovers(hosts):
    """Problems found after the phases: hosts not serving, extra processes in a namespace."""
    problems = []
    for host in hosts:
        master = host.master()
        if master is None or gone(master):
            problems.append("%s: no live master" % host.name)
            continue
        extra = sorted(set(netns_pids(host.ns)) - {master} - set(children(master)))
        if extra:
            problems.append("%s: processes besides master %d and its workers: %s" % (host.name, master, extra))
        if not host.healthy():
            problems.append("%s: /healthz is not 200" % host.name)
    return problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phases", default=",".join(PHASES),
                        help="comma-separated, in order, from: %s (default: all)" % ", ".join(PHASES))
    parser.add_argument("--settle", type=float, default=1.0,
                        help="seconds of steady load before and after each phase (default 1)")
    parser.add_argument("--pause", type=float, default=0.5,
                        help="seconds between hosts within a phase (default 0.5)")
    parser.add_argument("--keepalive", type=int, default=4, help="keep-alive client threads (default 4)")
    parser.add_argument("--fresh", type=int, default=2, help="new-connection client threads (default 2)")
    parser.add_argument("--slow-fraction", type=float, default=0.02,
                        help="share of requests that sleep 0.5-1.5 s in the app (default 0.02)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON here")
    parser.add_argument("--strict-skip", action="store_true",
                        help="exit %d (not 0) when this machine cannot run the scenario" % SKIP_STATUS)
    parser.add_argument("--keep-logs", action="store_true", help="keep the temp dir with every log")
    args = parser.parse_args(argv)
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = [p for p in phases if p not in PHASES]
    if unknown:
        parser.error("unknown phase(s) %s" % ", ".join(unknown))

    reason = unavailable_reason()
    if reason:
        print("SKIP: %s" % reason)
        if args.json:
            with open(args.json, "w") as handle:
                json.dump({"skipped": reason}, handle)
        return SKIP_STATUS if args.strict_skip else 0

    # Ctrl-C, TERM and HUP unwind through the finally below, which removes everything made here.
    def interrupted(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupted)
    set_subreaper()

    workdir = tempfile.mkdtemp(prefix="forkwsgi-multihost-")
    hosts, nginx, results, problems = [], None, [], []
    status = 1
    try:
        remove_stale()
        for index, octet in enumerate(free_subnets(3), 1):
            host = Host(index, octet, workdir)
            hosts.append(host)
            host.setup()
        for host in hosts:
            host.start()
        for host in hosts:
            host.wait_master()
            host.wait_healthy()
        log("hosts up: %s" % ", ".join("%s=%s:%d" % (h.name, h.addr, PORT) for h in hosts))
        nginx = Nginx(hosts, workdir)
        nginx.wait_ready()
        log("nginx on 127.0.0.1:%d" % nginx.port)
        load = dict(keepalive=args.keepalive, fresh=args.fresh, slow_fraction=args.slow_fraction,
                    slow_secs=(0.5, 1.5))
        for name in phases:
            log("phase %s" % name)
            result = run_phase(name, hosts, nginx, args.settle, args.pause, load)
            results.append(result)
            log("phase %s: sent %d, failed %d, retried by nginx %d (%s)" % (
                name, result["sent"], result["failed"], result["retried_by_lb"], result["summary"]))
        problems = check_leftovers(hosts)
        status = 0
    except KeyboardInterrupt as exc:
        log("interrupted (%s); cleaning up" % (exc or "Ctrl-C"))
        status = 130
    except Exception as exc:  # report, then clean up
        log("error: %s" % exc)
        problems.append("error: %s" % exc)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # cleanup is not to be cut short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if nginx is not None:
            nginx.stop()
        for host in hosts:
            host.teardown()
        if args.keep_logs or status not in (0, 130):
            log("logs kept in %s" % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    print_table(results, problems)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"phases": results, "problems": problems}, handle, indent=2)
    return status


def print_table(results, problems):
    if results:
        print("| phase | sent | ok | failed | retried by nginx | nginx 5xx | client view |")
        print("|---|---:|---:|---:|---:|---:|---|")
        for r in results:
            print("| %s | %d | %d | %d | %d | %d | %s |" % (r["phase"], r["sent"], r["ok"], r["failed"],
                                                         r["retried_by_lb"], r["lb_5xx"], r["summary"]))
        for r in results:
            if r["lb_errors"]:
                print("%s: nginx upstream errors: %s" % (r["phase"], r["lb_errors"]))
            if r["retried_examples"]:
                print("%s: retried, e.g. %s" % (r["phase"], "; ".join(r["retried_examples"][:3])))
            for failure in r["failures"]:
                print("%s: FAILED %s" % (r["phase"], failure))
    for problem in problems:
        print("PROBLEM: %s" % problem)


if __name__ == "__main__":
    sys.exit(main())
