"""Coverage-guided fuzzing of the sans-I/O request parser with atheris (see fuzz/README.md).

Each input picks limits and split points, then the bytes to parse. The
parser may refuse them only with an HTTPError (any other exception is a
crash), and must reach the same verdict whether the bytes come whole, cut
at the chosen points, or one at a time: the same requests, then the same
error status or end state. Where the compiled head scanner is built, the
parser must also reach the same verdict with the pure Python one (whole and
cut): a scanner may decline a head, never change what the parser makes of it.
"""
import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

with atheris.instrument_imports(include=["forkwsgi"]):
    # the same verdict the split-invariance test checks, and every head scanner it runs with
    from tests.support.parser_verdict import LIMITS, SCANNERS, outcome

# With the compiled scanner built, outcome()'s default reader uses it; this one is compared with it.
PURE = dict(SCANNERS)["python"] if len(SCANNERS) > 1 else None

BYTEWISE_MAX = 2048  # one byte at a time only for inputs up to this size: keeps the fuzzer fast


def TestOneInput(raw):
    fdp = atheris.FuzzedDataProvider(raw)
    limits = LIMITS[fdp.ConsumeIntInRange(0, len(LIMITS) - 1)]
    cuts = [fdp.ConsumeIntInRange(0, 1024) for _ in range(fdp.ConsumeIntInRange(0, 8))]
    data = fdp.ConsumeBytes(fdp.remaining_bytes())
    whole = outcome(data, (), limits)
    split = outcome(data, cuts, limits)
    if split != whole:
        raise AssertionError("split at %r: %r\nwhole: %r\ndata: %r" % (sorted(cuts), split, whole, data))
    if len(data) <= BYTEWISE_MAX:
        bytewise = outcome(data, range(1, len(data)), limits)
        if bytewise != whole:
            raise AssertionError("byte by byte: %r\nwhole: %r\ndata: %r" % (bytewise, whole, data))
    if PURE is not None:
        pure = outcome(data, (), limits, PURE)
        if pure != whole:
            raise AssertionError("pure Python scanner: %r\ncompiled: %r\ndata: %r" % (pure, whole, data))
        pure_split = outcome(data, cuts, limits, PURE)
        if pure_split != split:
            raise AssertionError("pure Python scanner, split at %r: %r\ncompiled: %r\ndata: %r"
                                 % (sorted(cuts), pure_split, split, data))


def main():
    argv = list(sys.argv)
    here = os.path.dirname(os.path.abspath(__file__))
    if not any(arg.startswith("-dict=") for arg in argv):
        argv.append("-dict=" + os.path.join(here, "http.dict"))
    atheris.Setup(argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
