"""A tiny run of every benchmark, so `make bench` cannot rot. Targets are not asserted here:
timings belong to benchmarks, tests prove that each measurement runs and is sane."""

import os

import pytest

from benchmarks import run


@pytest.mark.parametrize("only", ["pages", "dashboard", "export", "footprint"])
def test_each_benchmark_runs_at_tiny_size_and_reports_a_number(only, capsys):
    args = run.parse(["--quick", "--only", only, "--sizes", "60", "--duration", "0.5"])
    if only == "dashboard" and not os.environ.get("TEST_DATABASE_URL"):
        args.no_postgres = True
    lines = run.collect(args)
    assert lines, only
    for line in lines:
        assert line.ours == line.ours and line.ours >= 0, line  # a real number, not NaN
    run.print_table(lines)
    out = capsys.readouterr().out
    assert "measured" in out and lines[0].what in out
