"""``forkwsgi ctl``: talk to a running master through its control socket.

    forkwsgi ctl [--socket PATH | -c CONFIG] [--json] COMMAND [N]

Commands: status, top, reload, add N, remove N, stop, graceful-stop. The
socket path comes from --socket, else from the control_socket setting (config
file given with -c, FORKWSGI_CONTROL_SOCKET, FORKWSGI_CMD_ARGS).
"""
import argparse
import json
import os
import socket
import sys
import time

from forkwsgi.config.cmdline import load_config
from forkwsgi.errors import ConfigError

COMMANDS = ("status", "top", "reload", "add", "remove", "stop", "graceful-stop")


class ControlError(Exception):
    pass


def request(path, command, timeout=5.0):
    """Send one command line; return the master's JSON answer."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(path)
        except OSError as exc:
            raise ControlError("cannot connect to the control socket %s: %s" % (path, exc.strerror or exc)) from None
        sock.sendall(command.encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        raise ControlError("no answer from %s within %gs" % (path, timeout)) from None
    except OSError as exc:  # reset or broken pipe: the master went away, or refused the connection
        raise ControlError("connection to %s failed: %s" % (path, exc.strerror or exc)) from None
    finally:
        sock.close()
    if not data:
        raise ControlError("%s closed the connection without an answer" % path)
    try:
        return json.loads(data)
    except ValueError:
        raise ControlError("bad answer from %s: %r" % (path, data[:200])) from None


def _mb(value):
    return "-" if value is None else "%.1f MB" % (value / 1048576.0)


def _seconds(value):
    if value is None:
        return "-"
    if value < 60:
        return "%.1fs" % value
    if value < 3600:
        return "%dm%02ds" % divmod(int(value), 60)
    hours, rest = divmod(int(value), 3600)
    return "%dh%02dm" % (hours, rest // 60)


def table(rows):
    """Left-aligned columns, two spaces apart."""
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def format_status(status):
    master = status["master"]
    lines = ["master %d  forkwsgi %s  up %s  workers %d/%d wanted  generation %d  rss %s  requests %d" % (
        master["pid"], master["version"], _seconds(master["uptime"]), len(status["workers"]),
        master["workers_wanted"], master["generation"], _mb(master["rss"]), status["requests"])]
    if master.get("workers_max", 0) > master.get("workers_min", 0):  # --max-workers: the range and its moves
        lines.append("autoscaling: %d..%d workers, added %d, retired %d" % (
            master["workers_min"], master["workers_max"], master["scaled"]["up"], master["scaled"]["down"]))
    restarts = ", ".join("%s %d" % item for item in status["restarts"].items() if item[1])
    if restarts:
        lines.append("restarts: " + restarts)
    for listener in status["listeners"]:
        backlog = "-" if listener["backlog"] is None else "%d/%d" % (listener["backlog"], listener["backlog_max"])
        lines.append("listener %s  backlog %s" % (listener["name"], backlog))
    rows = [("SLOT", "PID", "AGE", "GEN", "STATE", "UP", "REQUESTS", "RSS", "USS", "CONNS", "CURRENT")]
    for worker in status["workers"]:
        current = "; ".join("%s %s (%s)" % (item["method"], item["path"][:80], _seconds(item["seconds"]))
                            for item in worker["current"]) or "-"
        rows.append((worker["slot"], worker["pid"], worker["age"], worker["generation"], worker["state"],
                     _seconds(worker["uptime"]), worker["requests"], _mb(worker["rss"]), _mb(worker.get("uss")),
                     worker["connections"], current))
    lines.append("")
    lines.append(table(rows))
    return "\n".join(lines)


def find_socket(args):
    if args.socket:
        return args.socket
    try:
        cfg, _ = load_config(["-c", args.config] if args.config else [], os.environ)
    except ConfigError as exc:
        raise ControlError(str(exc)) from None
    if not cfg.control_socket:
        raise ControlError("no control socket: give --socket PATH, or set control_socket "
                           "(config file with -c, FORKWSGI_CONTROL_SOCKET)")
    return cfg.control_socket


def main(argv):
    try:
        return _main(argv)
    except BrokenPipeError:  # `forkwsgi ctl status | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _main(argv):
    parser = argparse.ArgumentParser(prog="forkwsgi ctl", description="Control a running forkwsgi master.")
    parser.add_argument("--socket", "-s", metavar="PATH", help="the master's control socket")
    parser.add_argument("--config", "-c", metavar="FILE", help="config file naming control_socket")
    parser.add_argument("--json", action="store_true", help="print the master's answer as JSON")
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument("count", nargs="?", type=int, help="for add and remove: how many workers (default 1)")
    args = parser.parse_args(argv)
    try:
        path = find_socket(args)
        if args.command == "top":
            return top(path, args.json)
        line = args.command
        if args.command in ("add", "remove"):
            line += " %d" % (1 if args.count is None else args.count)
        elif args.count is not None:
            raise ControlError("%s takes no count" % args.command)
        answer = request(path, line)
    except ControlError as exc:
        print("forkwsgi ctl: error: %s" % exc, file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(answer, indent=2, sort_keys=True))
    if not answer.get("ok"):
        print("forkwsgi ctl: error: %s" % answer.get("error", "failed"), file=sys.stderr)
        return 1
    if not args.json:
        print(format_status(answer) if args.command == "status" else answer.get("message", "ok"))
    return 0


def top(path, as_json):
    """Status, refreshed every second until Ctrl-C. With ``as_json``, one JSON object a line and nothing
    else, so the stream can be piped into a JSON-lines reader."""
    try:
        while True:
            answer = request(path, "status")
            if as_json:
                sys.stdout.write(json.dumps(answer) + "\n")
            else:
                if sys.stdout.isatty():
                    sys.stdout.write("\x1b[H\x1b[2J")
                sys.stdout.write(time.strftime("%H:%M:%S") + "\n" + format_status(answer) + "\n")
            sys.stdout.flush()
            time.sleep(1.0)
    except KeyboardInterrupt:
        return 0
