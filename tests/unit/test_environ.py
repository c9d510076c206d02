"""build_environ: the cached header keys give exactly the environ the plain rules give, and the
compiled builder (_environ.c) gives exactly what the Python one gives, or declines."""
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forkwsgi.wsgi import environ as environ_module
from forkwsgi.wsgi.environ import build_environ
from forkwsgi.wsgi.forwarded import TrustedPeers
from forkwsgi.http.head import Request
from tests.unit.worker_harness import grows_for_a_request

BASE = {"SCRIPT_NAME": "", "SERVER_NAME": "localhost", "SERVER_PORT": "8000", "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "5555", "wsgi.url_scheme": "http"}
TRUSTED = TrustedPeers(["127.0.0.1"])
NOBODY = TrustedPeers([])


def environ_of(headers, target="/", trusted=TRUSTED, base=BASE):
    request = Request("GET", target, "HTTP/1.1", headers)
    return build_environ(request, dict(base), trusted)


def reference_headers(headers):
    """The header keys by the plain rules: no cache, no shortcut."""
    out = {}
    for name, value in headers:
        if name in ("content-type", "content-length"):
            key = name.upper().replace("-", "_")
        elif "_" in name:
            continue
        else:
            key = "HTTP_" + name.upper().replace("-", "_")
        if key in out:
            out[key] += ("; " if key == "HTTP_COOKIE" else ",") + value
        else:
            out[key] = value
    return out


NAMES = st.sampled_from(["host", "cookie", "content-type", "content-length", "x-a", "x_a", "accept",
                         "x-forwarded-for", "x-forwarded-proto", "user-agent", "a-b-c"])
VALUES = st.sampled_from(["", "v", "a, b", "x=1", "\xa0"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(NAMES | st.from_regex(r"[a-z0-9_\-]{1,12}", fullmatch=True), VALUES), max_size=8))
def test_header_keys_match_the_plain_rules(headers):
    environ = environ_of(headers, trusted=NOBODY)
    got = {k: v for k, v in environ.items() if k.startswith("HTTP_") or k in ("CONTENT_TYPE", "CONTENT_LENGTH")}
    assert got == reference_headers(headers)


def test_repeats_cookies_and_underscores():
    environ = environ_of([("host", "h"), ("x-a", "1"), ("x-a", "2"), ("cookie", "a=1"), ("cookie", "b=2"),
                          ("x_a", "smuggled"), ("content-type", "text/plain")])
    assert environ["HTTP_X_A"] == "1,2" and environ["HTTP_COOKIE"] == "a=1; b=2"
    assert environ["CONTENT_TYPE"] == "text/plain" and "smuggled" not in environ.values()
    assert isinstance(environ["wsgi.input"], io.BytesIO)


def test_absolute_form_authority_wins_over_host():
    environ = environ_of([("host", "ignored:1")], target="http://example.com:8080/p?q=1")
    assert environ["HTTP_HOST"] == "example.com:8080"
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("example.com", "8080")
    assert (environ["PATH_INFO"], environ["QUERY_STRING"]) == ("/p", "q=1")


def test_forwarded_headers_only_from_trusted_peers():
    headers = [("host", "h"), ("x-forwarded-for", "203.0.113.9, 127.0.0.1"), ("x-forwarded-proto", "https")]
    trusted = environ_of(headers)
    assert (trusted["REMOTE_ADDR"], trusted["wsgi.url_scheme"]) == ("203.0.113.9", "https")
    untrusted = environ_of(headers, trusted=NOBODY)
    assert (untrusted["REMOTE_ADDR"], untrusted["wsgi.url_scheme"]) == ("127.0.0.1", "http")
    assert untrusted["HTTP_X_FORWARDED_FOR"] == "203.0.113.9, 127.0.0.1"


def test_forwarded_for_is_read_right_to_left_past_trusted_hops():
    peers = TrustedPeers(["127.0.0.1", "10.0.0.0/8"])
    assert peers.client_address("203.0.113.9, 10.1.2.3,127.0.0.1", "127.0.0.1") == "203.0.113.9"
    assert peers.client_address("198.51.100.1, 203.0.113.9, 10.1.2.3", "127.0.0.1") == "203.0.113.9"
    assert peers.client_address("10.0.0.1, 127.0.0.1", "127.0.0.1") == "10.0.0.1"  # all trusted: the leftmost
    assert peers.client_address("203.0.113.9,,\t, ", "127.0.0.1") == "203.0.113.9"  # empty elements skipped
    assert peers.client_address(" , \t,", "127.0.0.1") == "127.0.0.1"  # no hop at all: the peer


def test_repeated_forwarded_lines_are_one_list():
    # Two X-Forwarded-For lines are one list of hops (RFC 9110 5.3), read right to left across both.
    environ = environ_of([("host", "h"), ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-for", "127.0.0.1"),
                          ("x-forwarded-proto", "http"), ("x-forwarded-proto", "https")])
    assert environ["HTTP_X_FORWARDED_FOR"] == "203.0.113.9,127.0.0.1"
    assert (environ["REMOTE_ADDR"], environ["wsgi.url_scheme"]) == ("203.0.113.9", "https")


def test_forwarded_values_lose_only_spaces_and_tabs():
    environ = environ_of([("host", "h"), ("x-forwarded-proto", "\xa0https"), ("x-forwarded-for", " \t10.0.0.1\t")])
    assert environ["wsgi.url_scheme"] == "http"
    assert environ["REMOTE_ADDR"] == "10.0.0.1"


def test_forwarded_for_hops_must_be_addresses():
    peers = TrustedPeers(["127.0.0.1", "10.0.0.0/8"])
    assert peers.client_address("<script>x</script>", "127.0.0.1") == "127.0.0.1"
    assert peers.client_address("unknown, 10.1.2.3", "127.0.0.1") == "127.0.0.1"
    assert peers.client_address("203.0.113.7:5555", "127.0.0.1") == "203.0.113.7"  # the port is dropped
    assert peers.client_address("[2001:DB8::7]:443, 10.1.2.3", "127.0.0.1") == "2001:db8::7"
    assert peers.client_address("2001:db8::7", "127.0.0.1") == "2001:db8::7"
    for bad in ("203.0.113.7:", "203.0.113.7:x", "[2001:db8::7", "[2001:db8::7]x", "[2001:db8::7]:",
                "[203.0.113.7]:80x", "999.1.1.1", "example.com", "203.0.113.7:5555:1", "1.2.3.4:\u0665"):
        assert peers.client_address(bad, "127.0.0.1") == "127.0.0.1", bad


def test_a_forwarded_for_that_is_no_address_leaves_the_peer_in_the_environ():
    environ = environ_of([("host", "h"), ("x-forwarded-for", "<script>x</script>")])
    assert environ["REMOTE_ADDR"] == "127.0.0.1"


# ----- the compiled builder against the Python one

compiled_only = pytest.mark.skipif(environ_module.fast_environ is None, reason=(
    "the compiled environ builder is not built (no C compiler at install, FORKWSGI_NO_EXTENSIONS or "
    "FORKWSGI_PURE_PYTHON)"))
TARGETS = st.sampled_from(["/", "/p?q=1", "/a%20b", "/x#f", "*", "http://h:1/p", "/p?", "/?a?b", "/p?x#y",
                           "example.com:443", "/app/x", "/app", "/\xe9"]) | st.from_regex(r"/[a-z0-9/?=&%#:.]{0,20}",
                                                                                   fullmatch=True)
HOST_VALUES = st.sampled_from(["h", "h:80", "h:", "h:x", "[::1]:8080", "h:8\xb2", ":", "", "a:b:81", "h\xe9:81",
                               "h:\u0665", "0:0"])
HEADERS = st.lists(st.tuples(NAMES | st.from_regex(r"[a-z0-9_\-]{1,12}", fullmatch=True), VALUES | HOST_VALUES),
                   max_size=8)


@compiled_only
@settings(max_examples=500, deadline=None)
@given(st.sampled_from(["GET", "HEAD", "POST"]), TARGETS, st.sampled_from(["HTTP/1.1", "HTTP/1.0"]), HEADERS,
       st.sampled_from(["", "/app"]), st.sampled_from([TRUSTED, NOBODY]))
def test_the_compiled_builder_gives_what_the_python_one_gives(method, target, version, headers, script_name, trusted):
    request = Request(method, target, version, headers)
    base = dict(BASE, SCRIPT_NAME=script_name)
    compiled = build_environ(request, dict(base), trusted)
    reference = build_environ(request, dict(base), trusted, fast=None)
    assert type(compiled.pop("wsgi.input")) is type(reference.pop("wsgi.input"))
    assert compiled == reference
    flags = {key: value.isascii() for key, value in reference.items() if isinstance(value, str)}
    assert {key: compiled[key].isascii() for key in flags} == flags  # (the str's own flag: canonical text)


PROXY_HEAD = [("host", "app.example.com"), ("user-agent", "Mozilla/5.0"), ("accept", "*/*"),
              ("accept-language", "en"), ("x-forwarded-for", "203.0.113.195"), ("x-forwarded-proto", "https"),
              ("x-request-id", "9b2c7f4e-1a3d-4e8b-b6f0-5c2d8e7a1f93"),
              ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
              ("content-type", "application/json"), ("content-length", "2"), ("x-" + "a" * 80, "long name")]


def test_a_roomy_copy_is_equal_and_its_copies_take_a_requests_keys_without_growing():
    base = dict(BASE, REMOTE_ADDR="127.0.0.1", REMOTE_PORT="40000")
    roomy = environ_module.roomy(base)
    assert roomy == base and type(roomy) is dict and roomy is not base
    # (each environ is a copy of a connection's keys; pure Python: plain dicts, which grow)
    assert grows_for_a_request(roomy) is (environ_module.roomy is dict)


@pytest.mark.parametrize("has_any", [pytest.param(environ_module.has_any, id="compiled", marks=compiled_only),
                                     pytest.param(environ_module._has_any, id="python")])
@pytest.mark.parametrize("keys, expected", [
    ((), False),
    (("HTTP_X_FORWARDED_FOR",), False),
    (("HTTP_X_FORWARDED_PROTO", "HTTP_HOST"), True),
    (("HTTP_HOST",), True),
])
def test_has_any_says_whether_an_environ_holds_one_of_the_keys(has_any, keys, expected):
    environ = dict(BASE, HTTP_HOST="h", HTTP_X_REQUEST_ID="1")
    assert has_any(environ, keys) is expected


@compiled_only
def test_the_compiled_has_any_refuses_what_is_not_a_dict_and_a_tuple():
    with pytest.raises(TypeError):
        environ_module.has_any({"a": 1}, ["a"])
    with pytest.raises(TypeError):
        environ_module.has_any([("a", 1)], ("a",))


@compiled_only
@pytest.mark.parametrize("target,headers", [
    ("/", [("host", "localhost:8000")]),
    ("/search?q=forkwsgi&page=2", PROXY_HEAD),
    ("/", []),
])
def test_common_heads_are_built_by_the_compiled_builder(target, headers):
    built = environ_module.fast_environ(dict(BASE), "GET", target, "HTTP/1.1", headers)
    assert built is not None, "declined a common head"
    reference, _ = environ_module._head_environ(Request("GET", target, "HTTP/1.1", headers), dict(BASE), NOBODY)
    assert built == reference


@compiled_only
@pytest.mark.parametrize("target,headers,script_name", [
    ("/a%20b", [], ""),  # percent-decoding
    ("/p#f", [], ""),
    ("http://h/p", [], ""),  # absolute-form: the authority is the host
    ("*", [], ""),
    ("/app/x", [], "/app"),  # SCRIPT_NAME to strip
    ("/", [("x_user", "a")], ""),  # an underscore: only a trusted proxy's counts
    ("/", [("x-a", "1"), ("x-a", "2")], ""),  # repeats are joined
    ("/", [("host", "[::1]:80")], ""),  # an IPv6 literal
    ("/", [("host", "h:8\xb2")], ""),  # str.isdigit() says yes to a superscript
    ("/", [("host", "")], ""),
])
def test_the_compiled_builder_declines_what_python_must_judge(target, headers, script_name):
    assert environ_module.fast_environ(dict(BASE, SCRIPT_NAME=script_name), "GET", target, "HTTP/1.1",
                                       headers) is None


@pytest.mark.parametrize("header, value", [("x-forwarded-proto", "https"), ("x-forwarded-ssl", "on"),
                                           ("x-forwarded-protocol", "ssl")])
def test_each_secure_scheme_header_alone_sets_the_scheme(header, value):
    assert environ_of([("host", "h"), (header, value)])["wsgi.url_scheme"] == "https"
    assert environ_of([("host", "h"), (header, value)], trusted=NOBODY)["wsgi.url_scheme"] == "http"


def test_a_configured_secure_scheme_header_is_read():
    peers = TrustedPeers(["127.0.0.1"], secure_scheme_headers={"X-Scheme": "https"})
    assert environ_of([("host", "h"), ("x-scheme", "https")], trusted=peers)["wsgi.url_scheme"] == "https"
    assert environ_of([("host", "h"), ("x-forwarded-proto", "https")], trusted=peers)["wsgi.url_scheme"] == "http"
