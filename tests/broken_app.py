"""An app module that fails at import time, for boot-failure tests."""
raise RuntimeError("this app cannot start")
