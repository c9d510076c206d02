"""Realistic load against a local forkwsgi serving loadtests/app.py.

    forkwsgi -w 2 -b 127.0.0.1:8000 loadtests.app:app
    locust -f loadtests/locustfile.py --headless -u 50 -r 10 -t 30s --host http://127.0.0.1:8000
"""
from locust import HttpUser, between, task


class BrowsingUser(HttpUser):
    """A keep-alive session: each simulated user reuses one connection, like a browser."""

    wait_time = between(0.01, 0.1)

    @task(10)
    def small_get(self):
        self.client.get("/")

    @task(3)
    def json_post(self):
        self.client.post("/json", json={"user": "locust", "items": list(range(20))})

    @task(1)
    def large_response(self):
        with self.client.get("/64k", catch_response=True) as response:
            if len(response.content) != 65536:
                response.failure("short body: %d bytes" % len(response.content))


class OneShotClient(HttpUser):
    """A client that opens a new connection for every request (scripts, health checks)."""

    wait_time = between(0.05, 0.2)
    weight = 1

    @task
    def fresh_connection(self):
        self.client.get("/", headers={"Connection": "close"})
