"""Helpers shared by the tests (and the benchmarks): fakes of the upstream, stdio sessions, Node tools.

Imported as ``tests.support.<module>``: the repository root is on ``sys.path`` (pytest's ``pythonpath``,
or ``python -m`` from the root), so the same import works from a test and from ``bench/``.
"""
