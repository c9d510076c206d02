"""A worker at its fd limit: the fd it keeps in reserve lets one hand-off in, and then it takes no more.

The limit is lowered in a child Python process (this one keeps its own), which reports what it saw.
"""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

AT_THE_FD_LIMIT = r"""
import json, os, resource, socket
from forkwsgi.shared.board import Board
from forkwsgi.shared.handoff import HandoffChannel

channel = HandoffChannel(Board())
clients = []
for index in range(2):
    worker_end, client = socket.socketpair()
    assert channel.send(b"conn %d" % index, worker_end.fileno())
    worker_end.close()
    clients.append(client)
seen = {"reserve_below_limit": channel.reserve_fd()}

_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(map(int, os.listdir("/proc/self/fd"))) + 8, hard))
filler = []
while True:  # every fd below the limit taken: the process is at its limit
    try:
        filler.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        break

first = channel.receive()  # the reserve is given up for the fd that arrives
seen["first_received"] = first[1].decode() if first else None
try:
    clients[0].sendall(b"ping")
    seen["first_works"] = first[0].recv(10).decode()
except (OSError, TypeError) as exc:  # TypeError: nothing was received
    seen["first_works"] = repr(exc)
seen["room_after_first"] = channel.has_room()  # the reserve could not be taken back
seen["reserve_at_limit"] = channel.reserve_fd()
seen["second_at_limit"] = channel.receive() is not None  # must stay queued for a sibling

os.close(filler.pop())  # an fd frees
seen["reserve_after_an_fd_freed"] = channel.reserve_fd()
second = channel.receive()
seen["second_received"] = second[1].decode() if second else None
print(json.dumps(seen))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/fd to find the fds in use")
def test_a_worker_at_its_fd_limit_receives_one_connection_and_leaves_the_next_queued_until_an_fd_frees():
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", AT_THE_FD_LIMIT], capture_output=True, text=True,
                          timeout=30, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen == {
        "reserve_below_limit": True,
        "first_received": "conn 0",
        "first_works": "ping",
        "room_after_first": False,
        "reserve_at_limit": False,
        "second_at_limit": False,
        "reserve_after_an_fd_freed": True,
        "second_received": "conn 1",
    }
