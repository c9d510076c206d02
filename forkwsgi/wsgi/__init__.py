"""PEP 3333: what an application sees and gives back, around one parsed request.

Owns the environ (environ.py), start_response and the response body's framing (response.py),
trusted proxies' forwarded headers (forwarded.py), queue time and shedding (queuetime.py),
and the --reload worker side with its error page (devreload.py, devpage.py).

May import forkwsgi.http, forkwsgi.config, forkwsgi.shared, forkwsgi.errors and forkwsgi.logs;
never the master, the worker or observe.
"""
