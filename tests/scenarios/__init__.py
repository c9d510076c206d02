"""Long scenarios, all marked slow (see conftest.py): fault injection, fairness, several hosts, real apps behind nginx."""
