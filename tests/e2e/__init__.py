"""Real forkwsgi processes on 127.0.0.1 driven over real sockets; each test quick."""
