"""Queue time stamps (forkwsgi/wsgi/queuetime.py): the compiled stamp against the Python one."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forkwsgi.wsgi.queuetime import QUEUE_TIME_KEY, REQUEST_START_KEY, fast_stamp, stamp

compiled_only = pytest.mark.skipif(fast_stamp is None, reason=(
    "the compiled environ builder is not built (no C compiler at install, FORKWSGI_NO_EXTENSIONS or "
    "FORKWSGI_PURE_PYTHON)"))
TIMES = (st.floats(min_value=0.0, max_value=4e9) | st.floats(allow_nan=True, allow_infinity=True)
         | st.sampled_from([1_765_058_400.123456, 0.0, -0.0, -1.5, 9.2e12, 9.3e12, -9.3e12, 1e-7, -1e-7,
                            -123_456.789, 8.99e12, -8.99e12]) | st.integers(0, 10))
SENT = st.none() | st.sampled_from(["t=1765058400000000", "t=99.0", "garbage", ""])


def _outcome(stamp_with, seen, now, sent):
    environ = {"REMOTE_ADDR": "127.0.0.1"}
    if sent is not None:
        environ[REQUEST_START_KEY] = sent
    try:
        queued = stamp_with(environ, seen, now)
    except Exception as exc:
        return type(exc), str(exc)
    return repr(queued), {key: repr(value) for key, value in environ.items()}


def _compiled(environ, seen, now):
    """As the handler stamps: the C twin, and the Python one where it declines."""
    queued = fast_stamp(environ, seen, now)
    return stamp(environ, seen, now, False) if queued is None else queued


@compiled_only
@settings(max_examples=2000, deadline=None)
@given(TIMES, TIMES, SENT)
def test_the_compiled_stamp_sets_what_the_python_one_sets(seen, now, sent):
    """The same queue time and the same two keys, to the last digit and the sign of a zero."""
    assert _outcome(_compiled, seen, now, sent) == _outcome(lambda e, s, n: stamp(e, s, n, False), seen, now, sent)


@compiled_only
def test_the_compiled_stamp_leaves_a_client_stamp_to_python():
    environ = {REQUEST_START_KEY: "t=99.0"}
    assert fast_stamp(environ, 100.0, 100.5) is None and environ == {REQUEST_START_KEY: "t=99.0"}
    environ = {}
    assert fast_stamp(environ, 1_765_058_400.25, 1_765_058_400.75) == 0.5
    assert environ == {REQUEST_START_KEY: "t=1765058400250000", QUEUE_TIME_KEY: 0.5}
