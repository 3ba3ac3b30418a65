"""Benchmarks of the image service on the local stack (``python -m bench``) and a soak (``python -m bench.soak``).

Not part of the test suite: each benchmark starts its own local stack (``local_stack``: each service in a process
of its own) on loopback ports, runs for a bounded time, prints a table and writes ``bench/results/<name>.json``.
"""
