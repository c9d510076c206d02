"""What the tests and the load tests share: one of each helper.

- ``ports``: a free loopback port;
- ``processes``: bounded polling (``wait_for``) and /proc views of processes;
- ``server``: ``Server``, one forkwsgi master started as a subprocess, and its logs;
- ``http``: raw-socket clients (``connect``, ``request``) and the one ``ResponseReader``;
- ``nginx``: nginx in front of a server, and where its binary is;
- ``loadclient``: the checked load of the fault scenarios and loadtests/multihost.py;
- ``hostile``, ``parser_verdict``, ``proxy_verdict``: inputs and verdicts shared by the
  parser tests, the live-server tests and the fuzzers (fuzz/).

Nothing here imports pytest at module level, so ``python -m loadtests.bench`` runs without it.
"""
