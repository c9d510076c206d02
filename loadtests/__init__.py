"""Benchmarks and load scenarios, run from the repository root as modules (``python -m loadtests.bench``),
so they import the shared helpers of tests/support/ without editing sys.path."""
