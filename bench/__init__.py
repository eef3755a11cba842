"""Benchmarks: `python -m bench [--quick] [--only SCENARIO]` (see bench/__main__.py and docs/PERFORMANCE.md)."""
