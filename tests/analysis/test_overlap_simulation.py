"""A small seeded version of ``make validate`` (benchmarks/validate.py): under the null
hypothesis the primary tests keep their level and their intervals cover, while the naive
independent test drifts with the within-person correlation."""

import pytest

from benchmarks.validate import ALPHA, mc_error, run

REPS = 1500


@pytest.fixture(scope="module")
def rows():
    return run(
        reps=REPS, seed=7, designs=["200/100/200", "60/30/60"], correlations=(-0.5, 0.0, 0.9)
    )


def test_primary_tests_keep_the_five_percent_level_and_their_coverage(rows):
    # 99.9 % Monte-Carlo bounds (3.29 standard errors) over 12 cells: a real check that a
    # correct test passes, while the naive test at correlation 0.9 (about 0.5 %) fails it.
    size_tol = mc_error(ALPHA, REPS) / 1.96 * 3.29
    cover_tol = mc_error(1 - ALPHA, REPS) / 1.96 * 3.29
    for row in rows:
        assert abs(row.reject - ALPHA) <= size_tol, row
        assert abs(row.cover_null - (1 - ALPHA)) <= cover_tol, row
        assert abs(row.cover_alt - (1 - ALPHA)) <= cover_tol, row


def test_the_naive_independent_test_is_conservative_or_liberal_with_the_correlation(rows):
    size_tol = mc_error(ALPHA, REPS) / 1.96 * 3.29
    prevalence = {(r.design, r.rho): r for r in rows if r.outcome == "prevalence"}
    assert prevalence[("200/100/200", 0.9)].reject_naive < ALPHA - size_tol
    assert prevalence[("200/100/200", -0.5)].reject_naive > ALPHA + size_tol
