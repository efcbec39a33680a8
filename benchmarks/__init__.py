"""Benchmarks and load tests of the survey platform (run with ``python -m benchmarks.<name>``)."""
