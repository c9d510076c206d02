"""In-process tests: no server process is started (a CLI run to check a config at most)."""
