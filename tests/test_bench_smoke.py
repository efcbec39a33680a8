"""``make bench`` measures what it says: its percentile, request counting and seeding are
checked on known input, its README table is written between the markers only, and a tiny
run of every benchmark keeps it from rotting. Targets are not asserted here: timings
belong to benchmarks."""

from __future__ import annotations

import math
import os
import sqlite3
import threading
import time
from contextlib import closing

import numpy as np
import pytest
import yaml

from benchmarks import readme, run
from benchmarks.common import percentile
from benchmarks.load_servers import CATALOG_PATH


def test_percentile_is_the_nearest_rank_on_known_input():
    values = [15, 20, 35, 40, 50]  # the textbook example of the nearest-rank method
    assert [percentile(values, q) for q in (0.05, 0.3, 0.4, 0.5, 1.0)] == [15, 20, 20, 35, 50]
    assert math.isnan(percentile([], 0.5))
    rng = np.random.default_rng(3)
    for n in (1, 2, 7, 20, 100, 1001):
        data = rng.exponential(size=n).tolist()
        for q in (0.5, 0.95, 0.99):
            expected = np.percentile(data, 100 * q, method="inverted_cdf")
            assert percentile(data, q) == expected, (n, q)


def test_hammer_counts_every_call_and_takes_the_quantile_of_their_latencies(monkeypatch):
    """Two clients whose calls take 2 ms and 30 ms on the clock the hammer reads (a clock of
    each thread, advanced by the call): the rate is the calls made over the run's time, the
    quantile the nearest-rank one of exactly those latencies."""
    clock = threading.local()
    monkeypatch.setattr(time, "perf_counter", lambda: getattr(clock, "now", 0.0))
    made: list[float] = []
    lock = threading.Lock()

    def make_call(i: int):
        latency = 0.002 if i == 0 else 0.030

        def call() -> int:
            clock.now = getattr(clock, "now", 0.0) + latency
            time.sleep(0.001 if i == 0 else 0.010)  # real time passes too, more for client 1
            with lock:
                made.append(latency)
            return 200

        return call

    for quantile in (0.5, 0.95):
        made.clear()
        started = time.monotonic()
        rate, value = run.hammer(make_call, concurrency=2, duration=0.5, quantile=quantile)
        wall = time.monotonic() - started
        assert 0.002 in made and 0.030 in made
        assert len(made) / wall <= rate <= len(made) / (0.5 - 0.01)
        expected = np.percentile(made, 100 * quantile, method="inverted_cdf")
        assert value == pytest.approx(expected), (quantile, made.count(0.030), len(made))


def test_a_failed_request_fails_the_benchmark():
    with pytest.raises(RuntimeError, match="failed requests, e.g. HTTP 500"):
        run.hammer(lambda i: lambda: 500, concurrency=1, duration=0.05)


def test_seeding_stores_the_respondents_it_reports(tmp_path):
    """The seed step of the dashboard benchmark: n submitted demo responses, each with one
    answer per real practice of the catalogue and kind, recounted with plain SQL."""
    path = tmp_path / "seed.db"
    seconds = run.seed(f"sqlite:///{path}", tmp_path, 60)
    listed = yaml.safe_load(CATALOG_PATH.read_text(encoding="utf-8"))["practices"]
    real = [p for p in listed if not p.get("fictitious")]
    with closing(sqlite3.connect(path)) as conn:
        responses = conn.execute(
            "SELECT count(*) FROM response WHERE status = 'submitted' AND is_demo"
        ).fetchone()[0]
        drafts = conn.execute("SELECT count(*) FROM response WHERE status = 'draft'").fetchone()
        per_response = [
            n for (n,) in conn.execute("SELECT count(*) FROM answer GROUP BY response_id")
        ]
    assert seconds > 0
    assert responses == 60 and drafts == (0,)
    assert per_response == [2 * len(real)] * 60


def test_the_readme_table_replaces_only_the_text_between_the_markers():
    lines = [
        run.Line("page GET, requests/s", 370.46, 466.4, "req/s", ">= 0.5x", True),
        run.Line("public results, p50 latency", 15.24, float("nan"), "ms", "info", True),
        run.Line("seed 100,000 respondents, SQLite", 13.41, 10.0, "s", "< 10 s", False),
        run.Line("a | b", 0.0004567, 1234.4, "MB", "info", True),
    ]
    text = "# Title\n\nintro\n<!-- bench:start -->\nold table\n<!-- bench:end -->\nafter | kept\n"
    new = readme.replace_block(text, readme.table(lines))
    assert new == (
        "# Title\n\nintro\n<!-- bench:start -->\n"
        "| measured | ours | baseline | ratio | target | met |\n"
        "|---|---|---|---|---|---|\n"
        "| page GET, requests/s | 370 req/s | 466 req/s | 0.794 | >= 0.5x | yes |\n"
        "| public results, p50 latency | 15.2 ms | — | — | info | yes |\n"
        "| seed 100,000 respondents, SQLite | 13.4 s | 10 s | 1.34 | < 10 s | **no** |\n"
        "| a \\| b | 0.000457 MB | 1,234 MB | 3.7e-07 | info | yes |\n"
        "<!-- bench:end -->\nafter | kept\n"
    )
    assert readme.replace_block(new, readme.table(lines)) == new
    with pytest.raises(ValueError, match="markers"):
        readme.replace_block("# Title\n<!-- bench:end -->\n", "table")


@pytest.mark.parametrize("only", ["pages", "dashboard", "export", "footprint"])
def test_each_benchmark_runs_at_tiny_size_and_writes_its_table(only, tmp_path, monkeypatch):
    collected: list[run.Line] = []
    collect = run.collect
    monkeypatch.setattr(run, "collect", lambda args: collected.extend(collect(args)) or collected)
    page = tmp_path / "README.md"
    page.write_text(
        f"# Title\n{readme.START}\nPREVIOUS TABLE\n{readme.END}\n## Next\n", encoding="utf-8"
    )
    argv = ["--quick", "--only", only, "--sizes", "60", "--duration", "0.5", "--readme", str(page)]
    if only == "dashboard" and not os.environ.get("TEST_DATABASE_URL"):
        argv.append("--no-postgres")

    run.main(argv)

    assert collected, only
    for line in collected:
        assert line.ours == line.ours and line.ours >= 0, line  # a real number, not NaN
    text = page.read_text(encoding="utf-8")
    assert text.startswith(f"# Title\n{readme.START}\n") and text.endswith(
        f"\n{readme.END}\n## Next\n"
    )
    assert "PREVIOUS TABLE" not in text and "python -m benchmarks.run --quick --only" in text
    for line in collected:
        assert f"| {line.what} | " in text, line.what
