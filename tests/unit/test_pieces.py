"""PiecesFile (forkwsgi/http/pieces.py): every read, line, seek and tell as io.BytesIO over the joined bytes."""
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forkwsgi.http.pieces import PiecesFile

PIECES = st.lists(st.binary(min_size=1, max_size=12).map(lambda b: b.replace(b"x", b"\n")), max_size=6)
SIZES = st.one_of(st.integers(-2, 30), st.none())
OPERATIONS = st.lists(st.one_of(
    st.tuples(st.just("read"), SIZES),
    st.tuples(st.just("read1"), SIZES),
    st.tuples(st.just("readline"), SIZES),
    st.tuples(st.just("readlines"), st.integers(-1, 30)),
    st.tuples(st.just("readinto"), st.integers(0, 30)),
    st.tuples(st.just("seek"), st.tuples(st.integers(-40, 40), st.sampled_from([0, 1, 2]))),
    st.tuples(st.just("tell"), st.none()),
    st.tuples(st.just("next"), st.none()),
    st.tuples(st.just("getvalue"), st.none()),
), max_size=25)


def apply(stream, operation, argument):
    """What ``stream`` answers (or raises) for one operation."""
    try:
        if operation == "readinto":
            buffer = bytearray(argument)
            return stream.readinto(buffer), bytes(buffer)
        if operation == "seek":
            return stream.seek(*argument)
        if operation == "next":
            return next(stream, "end")
        if operation in ("tell", "getvalue"):
            return getattr(stream, operation)()
        return getattr(stream, operation)(argument)
    except ValueError as exc:
        return "ValueError", str(exc)


@settings(max_examples=400, deadline=None)
@given(pieces=PIECES, operations=OPERATIONS)
def test_pieces_read_as_the_joined_bytes_would(pieces, operations):
    ours, reference = PiecesFile(list(pieces)), io.BytesIO(b"".join(pieces))
    for operation, argument in operations:
        assert apply(ours, operation, argument) == apply(reference, operation, argument), (operation, argument)
        assert ours.tell() == reference.tell()
    assert list(ours) == list(reference)


def test_a_whole_piece_is_handed_out_without_a_copy():
    first, second = b"a" * 1000, b"b" * 1000
    body = PiecesFile([first, second])
    assert body.read(1000) is first and body.read() is second


def test_reads_across_pieces_and_lines():
    body = PiecesFile([b"GET", b" line\nsec", b"ond\n", b"tail"])
    assert body.readline() == b"GET line\n"
    assert body.readlines() == [b"second\n", b"tail"]
    assert body.seek(-4, 2) == 16 and body.read(2) == b"ta"


def test_closed_it_reads_nothing():
    body = PiecesFile([b"abc"])
    body.close()
    with pytest.raises(ValueError):
        body.read()
    assert body.closed


def test_it_cannot_be_written():
    with pytest.raises(io.UnsupportedOperation):
        PiecesFile([b"abc"]).write(b"x")
