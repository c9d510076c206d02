"""--log-format json on a real server: every line of both logs parses, whatever the client sends,
and workers sharing stdout write whole lines."""
from tests.support.http import request
from tests.support.processes import wait_for
from tests.unit.test_json_logs import ACCESS_FIELDS, json_lines

HOSTILE = [
    b'GET /q%22uote%22?a="b"&c=%0A HTTP/1.1\r\nHost: x\r\nUser-Agent: "}{"forged":1}\r\n\r\n',
    b"GET /new%0Aline%0D%0A{%22x%22:1} HTTP/1.1\r\nHost: x\r\nX-Request-Id: abc-123\r\n\r\n",
    b"GET /bad%FF%FEutf8%C3%A9 HTTP/1.1\r\nHost: x\r\nReferer: http://r/\xff\xc3\xa9\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: " + b"\xe2\x80\xa8\"\\\t" * 1350 + b"\r\n\r\n",  # 8 KB
    b"GET /raise HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /errors HTTP/1.1\r\nHost: x\r\n\r\n",
]
REFUSED = [  # answered by the parser: error log lines only
    b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: " + b"\xff\"" * 5000 + b"\r\n\r\n",
    b"GET /a\xff\"b HTTP/1.1\r\nHost: x\r\n\r\n",
]


def test_every_line_of_both_logs_parses(server_factory, tmp_path):
    access_path = tmp_path / "access.log"
    server = server_factory(["-w", "1", "--log-format", "json", "--access-logfile", str(access_path)])
    statuses = [request(server.port, raw)[0] for raw in HOSTILE]
    assert statuses == [404, 404, 404, 200, 500, 200]
    assert [request(server.port, raw)[0] for raw in REFUSED] == [431, 400]
    assert wait_for(lambda: access_path.exists() and access_path.read_text().count("\n") == len(HOSTILE), 10)
    server.stop()
    access = json_lines(access_path.read_text())
    errors = json_lines(server.log())
    assert all(set(line) == ACCESS_FIELDS for line in access)
    assert [line["path"] for line in access] == [
        '/q"uote"', '/new\nline\r\n{"x":1}', "/bad\\xff\\xfeutf8\u00e9", "/", "/raise", "/errors"]
    assert access[0]["query"] == 'a="b"&c=%0A' and access[0]["user_agent"] == '"}{"forged":1}'
    assert access[1]["request_id"] == "abc-123"
    assert access[2]["referer"] == "http://r/\\xff\u00e9"
    assert access[3]["user_agent"] == ("\u2028\"\\\t" * 1350).rstrip("\t")
    assert access[4]["status"] == 500
    worker_pid = access[0]["pid"]
    assert worker_pid != server.pid and all(line["pid"] == worker_pid for line in access)
    boom = [line for line in errors if "traceback" in line]
    assert len(boom) == 1 and boom[0]["traceback"].endswith("RuntimeError: boom before start_response")
    assert {"level": "ERROR", "message": "app wrote to wsgi.errors"}.items() <= \
        [line for line in errors if line["message"] == "app wrote to wsgi.errors"][0].items()
    assert any(line["message"].startswith("Listening at:") for line in errors)
    assert len([line for line in errors if line["message"].startswith("refused request")]) == 2


def test_workers_sharing_stdout_write_whole_lines_at_once(server_factory):
    from concurrent.futures import ThreadPoolExecutor
    server = server_factory(["-w", "2", "--log-format", "json", "--access-logfile", "-"],
                            env={"PYTHONUNBUFFERED": ""})  # stdout to a file: block-buffered by Python
    raw = b"GET /?%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\nUser-Agent: " + b"\xc3\xa9" * 300 + b"\r\n\r\n"
    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(lambda i: request(server.port, raw.replace(b"%d", b"%d" % i))[0], range(200))) == {200}

    def logged():
        with open(server.out_path) as handle:
            return handle.read().count("\n")
    assert wait_for(lambda: logged() == 200, 10), "access lines still buffered: %d" % logged()
    with open(server.out_path) as handle:
        lines = json_lines(handle.read())
    assert sorted(int(line["query"]) for line in lines) == list(range(200))
    assert len({line["pid"] for line in lines}) == 2
