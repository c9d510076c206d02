"""The wrk script of loadtests/bench.py: what it sends is what each row says it measures."""
import os
import re
import shutil
import socket
import subprocess
import threading

import pytest

from loadtests.bench import PROXY_HEAD, WRK_SCRIPT

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")

REQUEST_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-a[0-9a-f]{3}-[0-9a-f]{12}$")
TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-01$")


def heads_sent(tmp_path, fresh_ids, count=50):
    """The first ``count`` request heads wrk sends with the bench's script and the proxy head."""
    script = tmp_path / "bench.lua"
    script.write_text(WRK_SCRIPT)
    listener = socket.create_server(("127.0.0.1", 0))
    heads = []
    enough = threading.Event()

    def serve():
        for _ in range(4):  # (wrk opens a connection to check the address first, and closes it)
            conn, _ = listener.accept()
            buf = b""
            with conn:
                while not enough.is_set():
                    data = conn.recv(65536)
                    if not data:
                        break
                    buf += data
                    while b"\r\n\r\n" in buf:
                        head, buf = buf.split(b"\r\n\r\n", 1)
                        heads.append(head.decode("latin-1"))
                        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                        if len(heads) >= count:
                            enough.set()
            if enough.is_set():
                return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    argv = ["wrk", "-t1", "-c1", "-d1s", "-s", str(script)]
    for header in PROXY_HEAD:
        argv += ["-H", header]
    argv.append("http://127.0.0.1:%d/" % listener.getsockname()[1])
    env = dict(os.environ, BENCH_BODY="0", BENCH_CLOSE="0", BENCH_FRESH_IDS="1" if fresh_ids else "0")
    subprocess.run(argv, env=env, capture_output=True, timeout=30, check=True)
    thread.join(5)
    listener.close()
    assert len(heads) >= count, "wrk sent %d requests" % len(heads)
    return [dict(line.split(": ", 1) for line in head.split("\r\n")[1:]) for head in heads[:count]]


def test_the_ids_row_sends_new_well_formed_ids_with_every_request_and_the_rest_of_the_head_unchanged(tmp_path):
    fixed = heads_sent(tmp_path, fresh_ids=False)
    fresh = heads_sent(tmp_path, fresh_ids=True)
    assert all(fields == fixed[0] for fields in fixed), "the same-ids row repeats its head"
    for name, form in (("X-Request-Id", REQUEST_ID), ("traceparent", TRACEPARENT)):
        values = [fields[name] for fields in fresh]
        assert len(set(values)) == len(values), "%s repeats" % name
        assert all(form.match(value) for value in values), values[:3]
    others = {name: value for name, value in fixed[0].items() if name not in ("X-Request-Id", "traceparent")}
    for fields in fresh:
        assert sorted(fields) == sorted(fixed[0])
        assert {name: fields[name] for name in others} == others
