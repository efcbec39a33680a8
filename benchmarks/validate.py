"""Simulation check of the primary Russian-vs-foreign tests (partially overlapping samples).

Under the null hypothesis (the same share of "yes", the same rating distribution in both
kinds of company), over within-person answer correlations from -0.5 to 0.9 and three
designs (Russian-only, foreign-only, both), it measures for the primary tests of
``analysis.overlap``:

* the rejection rate at 5 % (should be 5 % within Monte-Carlo error: +-0.0069 at 4,000
  replications), beside the naive test that treats all Russian and all foreign answers as
  independent samples (chi-square / Fisher for prevalence, Mann-Whitney for ratings);
* the coverage of the 95 % interval of the difference, under the null and under a true
  difference (should be 95 % within Monte-Carlo error).

``python -m benchmarks.validate`` prints a markdown table (``--reps``, ``--seed``);
``make validate`` runs the full version.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from analysis.overlap import compare_overlapping, compare_overlapping_means
from analysis.proportions import compare_independent
from analysis.ratings import mann_whitney_from_counts

DESIGNS = {
    "200/100/200": (200, 100, 200),
    "60/30/60": (60, 30, 60),
    "300/30/60": (300, 30, 60),
}
"""Respondents per design: Russian only / foreign only / both kinds."""

CORRELATIONS = (-0.5, -0.2, 0.0, 0.3, 0.6, 0.9)
P_NULL = 0.4
P_ALTERNATIVE = (0.45, 0.35)
RATING_PROBS = np.array([0.08, 0.14, 0.30, 0.32, 0.16])
RATING_SHIFT = 0.4  # latent shift of the Russian ratings under the alternative
ALPHA = 0.05


@dataclass(frozen=True)
class Row:
    """One line of the result table."""

    outcome: str
    design: str
    rho: float
    reject: float
    reject_naive: float
    cover_null: float
    cover_alt: float


def mc_error(p: float, reps: int) -> float:
    """Half-width of the 95 % Monte-Carlo interval of a rate ``p`` over ``reps`` runs."""
    return 1.959963984540054 * math.sqrt(p * (1 - p) / reps)


def _binary_counts(rng, design, p_ru, p_foreign, rho):
    """Counts of the three groups: (k_ru_only, n_ru_only, k_f_only, n_f_only, a, b, c, d)."""
    n_ru, n_foreign, n_both = design
    cov = rho * math.sqrt(p_ru * (1 - p_ru) * p_foreign * (1 - p_foreign))
    # Unequal shares bound the correlation of two 0/1 answers: take the nearest feasible one.
    p11 = min(max(p_ru * p_foreign + cov, max(0.0, p_ru + p_foreign - 1)), min(p_ru, p_foreign))
    cells = rng.multinomial(n_both, [p11, p_ru - p11, p_foreign - p11, 1 - p_ru - p_foreign + p11])
    return (
        int(rng.binomial(n_ru, p_ru)),
        n_ru,
        int(rng.binomial(n_foreign, p_foreign)),
        n_foreign,
        *(int(v) for v in cells),
    )


def simulate_proportions(design, rho: float, reps: int, rng) -> Row:
    """Rejection and coverage rates of the prevalence tests for one design and correlation."""
    reject = naive = cover_null = cover_alt = 0
    for _ in range(reps):
        counts = _binary_counts(rng, DESIGNS[design], P_NULL, P_NULL, rho)
        res = compare_overlapping(*counts)
        reject += res["p_val"] < ALPHA
        cover_null += res["diff_ci_low"] <= 0 <= res["diff_ci_high"]
        e, n_e, g, n_g, a, b, c, d = counts
        old = compare_independent(e + a + b, n_e + a + b + c + d, g + a + c, n_g + a + b + c + d)
        naive += old["p_val"] < ALPHA
        p_ru, p_foreign = P_ALTERNATIVE
        alt = compare_overlapping(*_binary_counts(rng, DESIGNS[design], p_ru, p_foreign, rho))
        cover_alt += alt["diff_ci_low"] <= p_ru - p_foreign <= alt["diff_ci_high"]
    return Row(
        "prevalence",
        design,
        rho,
        reject / reps,
        naive / reps,
        cover_null / reps,
        cover_alt / reps,
    )


_CUTS = stats.norm.ppf(np.cumsum(RATING_PROBS)[:-1])


def _rating_counts(rng, design, rho: float, shift: float):
    """Histograms of the unpaired ratings and the 5 x 5 paired table (Gaussian copula)."""
    n_ru, n_foreign, n_both = design
    latent = rng.multivariate_normal([shift, 0.0], [[1.0, rho], [rho, 1.0]], size=n_both)
    x_pair = np.digitize(latent[:, 0], _CUTS)
    y_pair = np.digitize(latent[:, 1], _CUTS)
    table = np.zeros((5, 5), dtype=np.int64)
    np.add.at(table, (x_pair, y_pair), 1)
    x_only = np.bincount(np.digitize(rng.normal(shift, 1.0, n_ru), _CUTS), minlength=5)
    y_only = np.bincount(np.digitize(rng.normal(0.0, 1.0, n_foreign), _CUTS), minlength=5)
    return x_only, y_only, table


def _true_rating_difference(shift: float) -> float:
    """Mean rating under a latent shift minus the mean without it (exact)."""
    scores = np.arange(1, 6)
    edges = np.concatenate([[-np.inf], _CUTS, [np.inf]])
    shifted = np.diff(stats.norm.cdf(edges - shift))
    return float(shifted @ scores - RATING_PROBS @ scores)


def simulate_ratings(design, rho: float, reps: int, rng) -> Row:
    """Rejection and coverage rates of the rating tests for one design and correlation."""
    reject = naive = cover_null = cover_alt = 0
    truth = _true_rating_difference(RATING_SHIFT)
    for _ in range(reps):
        x_only, y_only, table = _rating_counts(rng, DESIGNS[design], rho, 0.0)
        res = compare_overlapping_means(x_only, y_only, table)
        reject += res["p_val"] < ALPHA
        cover_null += res["diff_ci_low"] <= 0 <= res["diff_ci_high"]
        mwu = mann_whitney_from_counts(x_only + table.sum(axis=1), y_only + table.sum(axis=0))
        naive += mwu["p_val"] < ALPHA
        alt = compare_overlapping_means(*_rating_counts(rng, DESIGNS[design], rho, RATING_SHIFT))
        cover_alt += alt["diff_ci_low"] <= truth <= alt["diff_ci_high"]
    return Row(
        "mean rating",
        design,
        rho,
        reject / reps,
        naive / reps,
        cover_null / reps,
        cover_alt / reps,
    )


def run(reps: int = 4000, seed: int = 13, designs=None, correlations=CORRELATIONS) -> list[Row]:
    """Every (outcome, design, correlation) cell of the check."""
    rng = np.random.default_rng(seed)
    rows = []
    for design in designs or DESIGNS:
        for rho in correlations:
            rows.append(simulate_proportions(design, rho, reps, rng))
            rows.append(simulate_ratings(design, rho, reps, rng))
    return rows


def markdown(rows: list[Row], reps: int) -> str:
    """The result table in markdown; rates outside Monte-Carlo error are marked with !."""
    size_err = mc_error(ALPHA, reps)
    cover_err = mc_error(1 - ALPHA, reps)

    def mark(value: float, target: float, err: float) -> str:
        return f"{value:.4f}" + ("" if abs(value - target) <= err else " !")

    lines = [
        f"Replications per cell: {reps}; Monte-Carlo error (95 %): rejection +-{size_err:.4f}, "
        f"coverage +-{cover_err:.4f}. '!' marks a rate outside it.",
        "",
        "| outcome | design (ru only/foreign only/both) | correlation | rejection, primary "
        "| rejection, naive independent | coverage H0 | coverage H1 |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.outcome} | {r.design} | {r.rho:+.1f} | {mark(r.reject, ALPHA, size_err)} "
            f"| {r.reject_naive:.4f} | {mark(r.cover_null, 1 - ALPHA, cover_err)} "
            f"| {mark(r.cover_alt, 1 - ALPHA, cover_err)} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    """Command line: print the table; exit 1 if a primary rate is outside MC error."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    rows = run(args.reps, args.seed)
    print(markdown(rows, args.reps))
    # The adjusted (GEE) kind effect under confounding: benchmarks/validate_adjusted.py.
    from benchmarks import validate_adjusted

    print()
    print(validate_adjusted.markdown(validate_adjusted.run(args.reps, args.seed), args.reps))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
