"""Coverage-guided fuzzing of the PROXY protocol parser (v1, v2, auto) with atheris.

Each input picks a mode and split points, then the bytes. The parser may refuse
them only with an HTTPError (any other exception is a crash), and must reach
the same verdict whether the bytes come whole, cut at the chosen points, or
one at a time.
"""
import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

with atheris.instrument_imports(include=["forkwsgi"]):
    from tests.support.proxy_verdict import proxy_outcome

MODES = ("v1", "v2", "auto")
SEEDS = (b"", b"PROXY TCP4 ", b"\r\n\r\n\x00\r\nQUIT\n!\x11\x00\x0c")  # steer inputs toward each version


def TestOneInput(raw):
    fdp = atheris.FuzzedDataProvider(raw)
    mode = MODES[fdp.ConsumeIntInRange(0, len(MODES) - 1)]
    seed = SEEDS[fdp.ConsumeIntInRange(0, len(SEEDS) - 1)]
    cuts = [fdp.ConsumeIntInRange(0, 300) for _ in range(fdp.ConsumeIntInRange(0, 8))]
    data = seed + fdp.ConsumeBytes(fdp.remaining_bytes())
    whole = proxy_outcome(data, (), mode)
    for split in (cuts, range(1, min(len(data), 512))):
        verdict = proxy_outcome(data, split, mode)
        if verdict != whole:
            raise AssertionError("split at %r: %r\nwhole: %r\ndata: %r" % (list(split), verdict, whole, data))


def main():
    atheris.Setup(list(sys.argv), TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
