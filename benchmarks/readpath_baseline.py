"""The read path against its bare baseline: the full comparison, cold, vs reading the same
answer vectors with the plain driver and counting them with numpy.

For each size and database a scratch study is seeded with ``flask --app survey seed-demo``
(SQLite: a file in a temporary folder; PostgreSQL: a scratch database beside
``TEST_DATABASE_URL``, dropped afterwards). Then, each the best of ``--repeat`` runs:

* **baseline**: ``sqlite3`` / ``psycopg`` alone run the SELECT of the vectors (the five
  columns of the demo study's submitted responses) and :mod:`survey.readpath` counts them
  with numpy (decode, practice and category histograms: no pandas, no SQLAlchemy);
* **count tables**: ``queries.practice_counts`` + ``queries.category_counts`` (SQLAlchemy,
  the pandas count tables);
* **count tables + compare**: ``results._tables``, the comparison proper: the count
  tables and ``analysis.compare`` at practice and category level (the issue's "full
  comparison (independent, paired, ratings, categories)");
* **adjusted model's answer patterns**: ``queries.kind_patterns`` (what the adjusted view
  reads; for information);
* **ungated comparison**: ``results.ungated_comparison`` (count tables, ``compare`` at
  both levels, the sample description);
* **comparison, cold**: ``results._compute`` with an empty cache (what a dashboard view
  computes: the disclosure gate's queries too).

Targets (issue 14): the full comparison under 0.5 s at 100,000 respondents and at most
1.5x the baseline. ``--profile`` prints the cProfile of one cold comparison per study.

    python -m benchmarks.readpath_baseline --sizes 10000,100000
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy.engine import make_url

from benchmarks.load_servers import (
    BIN,
    create_postgres_database,
    drop_postgres_database,
    postgres_base_url,
)

VECTORS_SQL = (
    "SELECT catalog_version_id, answer_code, worked_in, ru_last_year, foreign_last_year "
    "FROM response WHERE status = 'submitted' AND quality_flag IS NULL AND is_demo = {true}"
)
COMPARED = (
    "count tables",
    "count tables + compare",
    "adjusted model's answer patterns",
    "ungated comparison",
    "comparison, cold",
)
LAYOUTS_SQL = "SELECT id, content FROM catalog_version"
CATEGORIES_SQL = "SELECT id, category_id FROM practice"


def seed(url: str, instance: Path, n: int) -> float:
    """Migrate, load the catalogue and seed ``n`` demo respondents through the flask CLI;
    return the seconds ``seed-demo`` took."""
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "INSTANCE_PATH": str(instance),
        "SECRET_KEY": secrets.token_hex(24),
    }
    flask = [str(BIN / "flask"), "--app", "survey"]
    for command in (["init-db"], ["load-catalog"]):
        subprocess.run([*flask, *command], env=env, check=True, capture_output=True)
    started = time.perf_counter()
    subprocess.run(
        [*flask, "seed-demo", "--respondents", str(n), "--seed", "1"],
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def _connect(url: str):
    """A plain DBAPI connection (sqlite3 or psycopg) and the SQL spelling of TRUE."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return sqlite3.connect(parsed.database), "1"
    import psycopg

    conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(conninfo), "TRUE"


def baseline(url: str) -> tuple[float, float, dict]:
    """(seconds reading, seconds counting, histograms): the vectors read with the plain
    driver, counted with numpy."""
    import json

    from survey import readpath, vectors

    connection, true = _connect(url)
    try:
        started = time.perf_counter()
        cursor = connection.cursor()
        layouts = {}
        for vid, content in cursor.execute(LAYOUTS_SQL).fetchall():
            layouts[vid] = vectors.layout(
                json.loads(content) if isinstance(content, str) else content
            )
        category_of = dict(cursor.execute(CATEGORIES_SQL).fetchall())
        rows = cursor.execute(VECTORS_SQL.format(true=true)).fetchall()
        read = time.perf_counter() - started
        started = time.perf_counter()
        blocks = readpath.decode(rows, layouts.__getitem__)
        histograms = {
            "practice": readpath.practice_histograms(blocks),
            "category": readpath.category_histograms(blocks, category_of),
        }
        return read, time.perf_counter() - started, histograms
    finally:
        connection.close()


def _app(url: str, instance: Path):
    from survey import create_app

    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "INSTANCE_PATH": str(instance),
            "SECRET_KEY": secrets.token_hex(24),
        }
    )


def best(app, call, repeat: int) -> float:
    """The best wall time of ``repeat`` calls, each in a fresh application context (as a
    request: nothing kept from the previous call but the application's caches)."""
    times = []
    for _ in range(repeat):
        with app.app_context():
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
    return min(times)


def measure(url: str, instance: Path, repeat: int, profile: bool) -> dict[str, float]:
    """Every figure of one study (see the module docstring)."""
    from survey import queries, results
    from survey.extensions import db

    timings = {}
    reads, counts = [], []
    for _ in range(repeat):
        read, count, histograms = baseline(url)
        reads.append(read)
        counts.append(count)
    timings["baseline read"] = min(reads)
    timings["baseline count"] = min(counts)
    timings["baseline"] = min(r + c for r, c in zip(reads, counts, strict=True))
    app = _app(url, instance)
    segment = queries.Segment()

    def tables():
        pop = queries.population()
        queries.practice_counts(segment, pop)
        queries.category_counts(segment, pop)

    def tables_and_compare():
        results._tables(segment, queries.population())

    def cold():
        results.clear_cache()
        results._compute(segment)

    with app.app_context():
        tables()  # warm up: imports, the layout cache, the catalogue
    timings["count tables"] = best(app, tables, repeat)
    timings["count tables + compare"] = best(app, tables_and_compare, repeat)
    timings["adjusted model's answer patterns"] = best(
        app, lambda: queries.kind_patterns(segment, queries.population()), repeat
    )
    timings["ungated comparison"] = best(app, lambda: results.ungated_comparison(segment), repeat)
    timings["comparison, cold"] = best(app, cold, repeat)
    with app.app_context():
        results.clear_cache()
        results.comparison(segment)
    timings["comparison, cache hit"] = best(app, lambda: results.comparison(segment), repeat)
    with app.app_context():
        if profile:
            profiler = cProfile.Profile()
            profiler.enable()
            cold()
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
            print(out.getvalue())
    with app.app_context():
        _check_same(histograms, segment, queries.population())
        db.session.remove()
        db.engine.dispose()
    return timings


def _check_same(histograms: dict, segment, pop) -> None:
    """The baseline counted what the application counts (else the comparison is void)."""
    from survey import queries, readpath

    practice = readpath.count_tables(*histograms["practice"], "practice_id")
    keys, joint = histograms["category"]
    category = readpath.count_tables(keys, joint, joint, "category_id")
    for name, table in queries.practice_counts(segment, pop).items():
        assert table.equals(practice[name]), name
    for name, table in queries.category_counts(segment, pop).items():
        assert table.equals(category[name]), name


def run(sizes: list[int], databases: list[str], repeat: int, profile: bool) -> list[tuple]:
    """Seed and measure every (database, size); return the report rows."""
    lines = []
    for database in databases:
        for n in sizes:
            with tempfile.TemporaryDirectory(prefix="readpath-") as folder:
                tmp = Path(folder)
                if database == "sqlite":
                    url = f"sqlite:///{tmp / 'survey.db'}"
                else:
                    url = create_postgres_database(postgres_base_url())
                try:
                    seconds = seed(url, tmp / "instance", n)
                    timings = measure(url, tmp / "instance", repeat, profile)
                finally:
                    if database != "sqlite":
                        drop_postgres_database(url, postgres_base_url())
            lines.append((database, n, seconds, timings))
            report([lines[-1]])
    return lines


def report(lines: list[tuple]) -> None:
    """Print the figures, each with its ratio to the baseline and the targets."""
    for database, n, seconds, t in lines:
        print(f"\n{database}, {n:,} demo respondents (seeded in {seconds:.1f} s)")
        base = t["baseline"]
        print(
            f"  {'baseline (plain driver + numpy)':38s} {base * 1000:8.1f} ms   "
            f"(read {t['baseline read'] * 1000:.1f} ms, count {t['baseline count'] * 1000:.1f} ms)"
        )
        for name in COMPARED:
            ratio = t[name] / base
            verdict = ""
            if name == "count tables + compare" and n >= 100_000:
                met = t[name] < 0.5 and ratio <= 1.5
                verdict = "  target < 0.5 s and <= 1.5x: " + ("met" if met else "MISSED")
            print(f"  {name:38s} {t[name] * 1000:8.1f} ms   {ratio:5.2f}x{verdict}")
        print(f"  {'comparison, cache hit':38s} {t['comparison, cache hit'] * 1000:8.1f} ms")


def main(argv: list[str] | None = None) -> int:
    """Command line: measure a given database, or seed and measure each size and database."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="10000,100000", help="respondents, comma-separated")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile one cold comparison")
    parser.add_argument("--url", help="measure this already seeded database instead (no seeding)")
    args = parser.parse_args(argv)
    if args.url:
        with tempfile.TemporaryDirectory(prefix="readpath-") as folder:
            timings = measure(args.url, Path(folder) / "instance", args.repeat, args.profile)
        report([(make_url(args.url).get_backend_name(), 0, float("nan"), timings)])
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    run(sizes, args.databases.split(","), args.repeat, args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
