"""Every test here is a long scenario (fault injection, multi-host, timing under load, real apps
behind nginx): marked ``slow``, so ``pytest -m "not slow"`` leaves them to the full run."""
import pytest


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/scenarios/" in item.nodeid:
            item.add_marker(pytest.mark.slow)
