"""The workers' counters page: each request counted once, in its method, status class and
duration bucket, with or without app threads."""
import pytest

from forkwsgi.shared import stats
from forkwsgi.shared.stats import (BUCKETS, BYTES_IN, BYTES_OUT, DURATION, DURATION_SUM_US, METHODS, REQUESTS,
                                   STATUS_CLASSES, WorkerStats)


def request_cell(method, status_class):
    return REQUESTS + METHODS.index(method) * len(STATUS_CLASSES) + STATUS_CLASSES.index(status_class)


def only_nonzero(counters, first, count):
    return {index: value for index, value in enumerate(counters[first:first + count], first) if value}


@pytest.fixture
def page():
    page = WorkerStats()
    yield page
    page.close()


@pytest.mark.parametrize("method, code, elapsed, row, bucket", [
    ("GET", 200, 0.001, ("GET", "2xx"), 0),
    ("POST", 404, 0.03, ("POST", "4xx"), BUCKETS.index(0.05)),
    ("BREW", 503, 0.005, ("other", "5xx"), 0),
    ("GET", 700, 99.0, ("GET", "none"), len(BUCKETS)),
    ("HEAD", 101, 0.25, ("HEAD", "1xx"), BUCKETS.index(0.25)),
])
def test_one_request_is_counted_once_in_its_method_status_and_bucket(page, method, code, elapsed, row, bucket):
    page.end(page.begin(method, "/x", 1.0), method, code, 7, 11, elapsed)
    counters = page.counters()
    requests = len(METHODS) * len(STATUS_CLASSES)
    assert only_nonzero(counters, REQUESTS, requests) == {request_cell(*row): 1}
    assert only_nonzero(counters, DURATION, len(BUCKETS) + 1) == {DURATION + bucket: 1}
    assert counters[DURATION_SUM_US] == pytest.approx(elapsed * 1e6)
    assert (counters[BYTES_IN], counters[BYTES_OUT]) == (7, 11)
    assert page.requests_served() == 1


def test_a_finished_request_leaves_its_slot(page):
    slot = page.begin("GET", "/slow", 123.0)
    assert page.running() == [("GET", "/slow", 123.0)]
    page.end(slot, "GET", 200, 0, 0, 0.1)
    assert page.running() == []


def test_with_threads_a_request_without_a_slot_is_counted_once_all_the_same():
    page = WorkerStats(threads=2)
    page.setup_threads(2)
    try:
        first, second = page.begin("GET", "/a", 1.0), page.begin("GET", "/b", 1.0)
        assert page.begin("GET", "/c", 1.0) == -1  # more requests than slots
        page.end(-1, "GET", 200, 0, 5, 0.001)
        assert len(page.running()) == 2
        page.end(first, "GET", 200, 0, 5, 0.001)
        page.end(second, "POST", 201, 3, 5, 0.001)
        counters = page.counters()
        assert counters[request_cell("GET", "2xx")] == 2 and counters[request_cell("POST", "2xx")] == 1
        assert page.requests_served() == 3 and counters[BYTES_OUT] == 15 and counters[BYTES_IN] == 3
        assert page.running() == [] and sorted(page.free_slots) == [0, 1]
    finally:
        page.close()


def test_queue_time_is_counted_in_its_bucket_as_the_app_is_called(page):
    page.begin("GET", "/", 1.0, queued=0.02)
    counters = page.counters()
    assert only_nonzero(counters, stats.QUEUE, len(BUCKETS) + 1) == {stats.QUEUE + BUCKETS.index(0.025): 1}
    assert counters[stats.QUEUE_SUM_US] == pytest.approx(20000)
