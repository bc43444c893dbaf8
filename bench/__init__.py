"""Benchmarks: one command each (``python -m bench.NAME``), one JSON object on stdout.

See docs/performance.md.
"""
