"""Benchmarks, each comparing two things in one run; run them from the project folder as ``python -m bench.<name>``."""
