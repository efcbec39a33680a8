"""Foreign vs Russian companies adjusted for period, role level and job function (GEE).

A respondent may answer about a practice for both kinds of company, and the kinds differ in
who answers about them: foreign-company answers come more often from recent years, from
managers, from some functions. The adjusted estimate compares the kinds *within* the same
period, role level and job function, through a logistic regression fitted by generalized
estimating equations (GEE):

``logit P(existed) = b0 + b_kind * foreign + C(period) + C(role level) + C(function)``

* one row per answer (the practice "existed", any of the existing codes = 1, or "no" = 0;
  don't know, not asked, not my role and answers outside a period filter are no rows);
* the covariates are those of the kind the answer is about (``<kind>_last_year``,
  ``<kind>_role_level``, ``<kind>_function``): what the respondent did *in that kind*;
* answers of one respondent form a cluster (exchangeable working correlation), and the
  standard errors are the robust ("sandwich") ones, valid whatever the true correlation.

Reported per practice: the odds ratio of foreign vs Russian without covariates (the same GEE
with the kind only, on the same rows) and with them, each with its Wald 95 % interval and p
value, and the adjusted difference in the share "existed" by standardisation: the mean
predicted probability over the model's answers with the kind set to foreign, minus the same
with the kind set to Russian (each answer keeps its own period, role and function), with a
delta-method interval from the robust covariance (it treats the answers' covariates as
fixed, like Stata's ``margins`` default).

Why not ``statsmodels.GEE`` directly: the input is a table of *patterns* (how many
respondents gave the same answers with the same covariates), the lossless form the database
aggregates to. ``statsmodels.GEE`` has no frequency weights (its ``weights`` are sampling
weights: the sandwich squares them) and loops over clusters in Python: on 10,000
respondents it takes about 4 s per model, 6 minutes for the 47 practices. :func:`fit_gee`
solves the same estimating equations as ``statsmodels.GEE(..., Binomial(),
Exchangeable()).fit()`` (same start from a GLM, same iteration and stopping rule, same
moment estimator of the correlation with its degrees-of-freedom correction, same sandwich)
with each pattern counted ``n`` times, vectorised; the tests pin it to ``statsmodels.GEE`` on
the expanded per-answer rows to 1e-6, and the start values come from ``statsmodels.GLM``
with frequency weights.

Rules (documented, never silent):

* answers with a covariate missing (responses from before 2026-12, which were not asked
  these questions) are left out of both models; their number is reported
  (``n_excluded_ru``, ``n_excluded_foreign``);
* a covariate is used with the levels observed among the model's answers (empty levels are
  dropped, none are merged); a covariate with a single level (a period filter) adjusts for
  nothing and is left out (``adjusted_for`` lists what was used);
* no estimate, and a ``note`` instead, when a kind has fewer than ``min_answers`` usable
  answers (``too_few_answers``); when the outcome is the same for every answer of a kind,
  a covariate level or a combination of them (``separation``, found by a linear programme,
  :func:`separated`); when the
  kind cannot be told apart from the covariates (``collinear``); when the iterations do not
  converge or the working correlation leaves (-1, 1) (``not_converged``). The unadjusted
  estimate stays when only the adjusted model fails.
* when fewer respondents answered for both kinds than the model has parameters, the
  exchangeable correlation cannot be estimated by the moment estimator: the working
  correlation is then independence (``rho`` 0, ``working_correlation`` "independence");
  the sandwich errors stay valid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, sparse, special, stats

from analysis.proportions import KINDS

COVARIATES = ("period", "role", "function")
PATTERN_COLUMNS = [
    "practice_id",
    "y_ru",
    "y_foreign",
    *(f"{c}_{k}" for k in KINDS for c in COVARIATES),
    "n",
]
"""Columns of the pattern table :func:`adjusted_estimates` takes (see its docstring)."""

RESULT_COLUMNS = [
    "practice_id",
    "n_respondents",
    "n_answers",
    "n_answers_ru",
    "n_answers_foreign",
    "n_excluded_ru",
    "n_excluded_foreign",
    "or_unadj",
    "or_unadj_ci_low",
    "or_unadj_ci_high",
    "p_val_unadj",
    "or_adj",
    "or_adj_ci_low",
    "or_adj_ci_high",
    "p_val_adj",
    "log_or_adj",
    "se_log_or_adj",
    "diff_adj",
    "diff_adj_ci_low",
    "diff_adj_ci_high",
    "rho",
    "working_correlation",
    "adjusted_for",
    "note",
]

NOTES = {
    "too_few_answers": "fewer usable answers for a kind of company than the threshold",
    "separation": "the answers are all 'existed' or all 'no' in a kind of company, a "
    "covariate level or a combination of them: the odds ratio is not finite",
    "collinear": "the kind of company cannot be told apart from period, role and function",
    "not_converged": "the estimating equations did not converge",
}
"""What each ``note`` code means (English; the dashboard translates them)."""

MAXITER = 60
CTOL = 1e-6
# statsmodels.GEE's defaults, kept so that the fits agree with it to the last digits.
SEPARATION_LINEAR_PREDICTOR = 25.0
# |logit| above this (a probability within 1e-11 of 0 or 1) means the fit runs off towards
# infinity although the linear programme found no exact separation (a near one): no estimate.
_EPS = np.finfo(float).eps


class FitFailed(Exception):
    """The model cannot be fitted; ``code`` is a key of :data:`NOTES`."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class GEEFit:
    """A fitted logistic GEE: coefficients, robust covariance, working correlation."""

    params: np.ndarray
    cov: np.ndarray
    rho: float
    independence: bool
    iterations: int


class _Clusters:
    """Answer rows grouped into clusters (respondent patterns), each counted ``weight``
    times; clusters hold one or two rows."""

    def __init__(self, cluster: np.ndarray, weight: np.ndarray):
        codes, index = np.unique(cluster, return_inverse=True)
        n_rows = len(cluster)
        self.matrix = sparse.csr_array(
            (np.ones(n_rows), (index, np.arange(n_rows))), shape=(len(codes), n_rows)
        )
        self.size = np.asarray(self.matrix.sum(axis=1)).ravel()
        cluster_weight = np.zeros(len(codes))
        cluster_weight[index] = weight
        self.weight = cluster_weight
        self.row_weight = weight
        self.nobs = float(weight.sum())
        self.n_pairs = float((cluster_weight * self.size * (self.size - 1) / 2).sum())

    def sums(self, values: np.ndarray) -> np.ndarray:
        """Per-cluster sums of row values (a vector or the rows of a matrix)."""
        return self.matrix @ values


def _means(X: np.ndarray, beta: np.ndarray):
    """Fitted probability, its derivative, and the Binomial standard deviation (with
    statsmodels' clipping of the probability away from 0 and 1)."""
    linear = X @ beta
    mu = special.expit(linear)
    clipped = np.clip(mu, _EPS, 1 - _EPS)
    return linear, mu, mu * (1 - mu), np.sqrt(clipped * (1 - clipped))


def _solve_terms(X, y, beta, rho, clusters: _Clusters):
    """B = sum D'V^-1 D, the score sum D'V^-1 r and the per-cluster scores D_c'V_c^-1 r_c,
    with V_c = S R(rho) S (exchangeable R, S the Binomial standard deviations)."""
    _, mu, dmu, sd = _means(X, beta)
    a = X * (dmu / sd)[:, None]
    e = (y - mu) / sd
    # R^-1 x = x / (1 - rho) - c_k * sum(x) for a cluster of k rows (as statsmodels writes it)
    c = rho / (1.0 - rho) / (1.0 + rho * (clusters.size - 1))
    sum_a = clusters.sums(a)
    sum_e = clusters.sums(e)
    w = clusters.weight
    row_w = clusters.row_weight
    bmat = (a * row_w[:, None]).T @ a / (1.0 - rho) - (sum_a * (w * c)[:, None]).T @ sum_a
    per_cluster = clusters.sums(a * e[:, None]) / (1.0 - rho) - sum_a * (c * sum_e)[:, None]
    score = per_cluster.T @ w
    return bmat, score, per_cluster


def _update_rho(X, y, beta, clusters: _Clusters) -> float:
    """The moment estimator of the exchangeable correlation, with statsmodels' correction
    for the number of parameters (``ddof_scale``)."""
    ddof = X.shape[1]
    _, mu, _, sd = _means(X, beta)
    e = (y - mu) / sd
    scale = float((clusters.row_weight * e**2).sum()) / (clusters.nobs - ddof)
    if not scale > 0:  # every answer predicted exactly: separation
        raise FitFailed("separation")
    sum_e = clusters.sums(e)
    sum_e2 = clusters.sums(e**2)
    cross = float((clusters.weight * (sum_e**2 - sum_e2) / 2).sum())
    return cross / scale / (clusters.n_pairs - ddof)


def _distinct(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes of the distinct rows of ``matrix`` (0, 1, ... by first appearance) and the
    index of each one's first row."""
    rows = np.ascontiguousarray(matrix)
    as_bytes = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    codes, _uniques = pd.factorize(as_bytes)
    first = np.full(codes.max(initial=-1) + 1, len(codes))
    np.minimum.at(first, codes, np.arange(len(codes)))
    return codes, first


def separated(X, y) -> bool:
    """Whether the outcome is (quasi-)completely separated by the columns of ``X``: some
    direction b != 0 has x'b >= 0 for every 1 and x'b <= 0 for every 0 (then the
    likelihood has no maximum and an odds ratio runs to 0 or infinity).

    A linear programme (Konis 2007, the check of R's ``detectseparation``): maximise
    sum_i s_i x_i'b subject to s_i x_i'b >= 0 and -1 <= b <= 1, with s_i = 2 y_i - 1;
    the data are separated when the maximum is above 0. It finds the separations a look
    at each level alone misses (a combination of levels where every answer is the same).
    """
    X = np.asarray(X, dtype="float64")
    signed = X * (2 * np.asarray(y, dtype="float64") - 1)[:, None]
    result = optimize.linprog(
        -signed.sum(axis=0),
        A_ub=-signed,
        b_ub=np.zeros(len(signed)),
        bounds=[(-1.0, 1.0)] * X.shape[1],
        method="highs",
    )
    if result.status != 0:  # (bounded and feasible at b = 0: not expected)
        raise FitFailed("not_converged")
    return -result.fun > 1e-7 * max(1.0, float(np.abs(signed).sum()))


def _start(X, y, weight) -> np.ndarray:
    """Start values: the logistic GLM (what statsmodels.GEE starts from, on the expanded
    rows), fitted on the distinct (outcome, covariates) rows with frequency weights: the
    same sums, so the same iterations. Raises FitFailed ``collinear`` when X has not
    full column rank, ``separation`` when the outcome is separated (:func:`separated`)."""
    import statsmodels.api as sm

    codes, first = _distinct(np.column_stack([y, X]))
    counts = np.bincount(codes, weights=weight)
    if np.linalg.matrix_rank(X[first]) < X.shape[1]:
        raise FitFailed("collinear")
    if separated(X[first], y[first]):
        raise FitFailed("separation")
    model = sm.GLM(y[first], X[first], family=sm.families.Binomial(), freq_weights=counts)
    return np.asarray(model.fit().params, dtype="float64")


def fit_gee(y, X, cluster, weight=None, maxiter: int = MAXITER, ctol: float = CTOL) -> GEEFit:
    """Fit a logistic GEE with an exchangeable working correlation and robust errors.

    The same estimator as ``statsmodels.GEE(y, X, groups, family=Binomial(),
    cov_struct=Exchangeable()).fit()`` on the rows repeated ``weight`` times (each
    repetition its own cluster), computed without repeating them.

    Parameters
    ----------
    y : array_like
        Outcome, 0 or 1, one per row.
    X : array_like
        Design matrix (with the constant), one row per answer.
    cluster : array_like
        Cluster label of each row (one or two rows per cluster).
    weight : array_like, optional
        How many identical clusters each row stands for; the same for the rows of a
        cluster. Default 1.
    maxiter, ctol : int, float
        Iteration limit and the tolerance on the norm of the score (statsmodels' defaults).

    Returns
    -------
    GEEFit
        ``params``, the robust covariance ``cov``, the working correlation ``rho``
        (0 with ``independence`` True when too few clusters hold two rows to estimate it).

    Raises
    ------
    FitFailed
        ``collinear`` when ``X`` has not full column rank; ``not_converged`` when the
        iterations do not converge, the normal matrix is singular or the correlation
        estimate leaves (-1, 1).

    Examples
    --------
    >>> y = np.array([1, 0, 1, 1, 0, 0, 1, 0])
    >>> X = np.column_stack([np.ones(8), [0, 1, 0, 1, 0, 1, 0, 1]])
    >>> fit = fit_gee(y, X, cluster=[1, 1, 2, 2, 3, 3, 4, 4], weight=[5] * 8)
    >>> round(float(fit.params[1]), 4)
    -2.1972
    """
    y = np.asarray(y, dtype="float64")
    X = np.asarray(X, dtype="float64")
    weight = np.ones(len(y)) if weight is None else np.asarray(weight, dtype="float64")
    clusters = _Clusters(np.asarray(cluster), weight)
    if clusters.size.max(initial=0) > 2:
        raise ValueError("fit_gee takes clusters of one or two rows (two kinds of company)")
    if clusters.nobs <= X.shape[1]:
        raise FitFailed("too_few_answers")
    independence = clusters.n_pairs <= X.shape[1]
    beta = _start(X, y, weight)
    rho = 0.0
    norm = -1.0
    updates = 0
    iterations = 0
    for iterations in range(1, maxiter + 1):  # noqa: B007 - the count is reported
        bmat, score, _ = _solve_terms(X, y, beta, rho, clusters)
        try:
            step = np.linalg.solve(bmat, score)
        except np.linalg.LinAlgError:
            raise FitFailed("not_converged") from None
        beta = beta + step
        norm = float(np.sqrt(np.sum(score**2)))
        if norm < ctol and updates > 0:
            break
        updates += 1  # (statsmodels counts the no-op update of independence too)
        if not independence:
            rho = _update_rho(X, y, beta, clusters)
            if not -1.0 < rho < 1.0 or not math.isfinite(rho):
                raise FitFailed("not_converged")
    if not norm < ctol or not np.isfinite(beta).all():
        raise FitFailed("not_converged")
    bmat, _, per_cluster = _solve_terms(X, y, beta, rho, clusters)
    try:
        bread = np.linalg.inv(bmat)
    except np.linalg.LinAlgError:
        raise FitFailed("not_converged") from None
    meat = (per_cluster * clusters.weight[:, None]).T @ per_cluster
    return GEEFit(beta, bread @ meat @ bread, rho, independence, iterations)


def answer_rows(patterns: pd.DataFrame) -> pd.DataFrame:
    """One row per (pattern, kind) answer: [practice_id, cluster, foreign, existed, period,
    role, function, n]; a covariate is missing (None) where the response has none.

    ``cluster`` numbers the patterns: the answers of one pattern (one respondent, ``n``
    times) share it.
    """
    _check_patterns(patterns)
    parts = []
    for kind in KINDS:
        answered = patterns[patterns[f"y_{kind}"].notna()]
        parts.append(
            pd.DataFrame(
                {
                    "practice_id": answered["practice_id"].to_numpy(),
                    "cluster": answered.index.to_numpy(),
                    "foreign": 1.0 if kind == "foreign" else 0.0,
                    "existed": answered[f"y_{kind}"].astype("float64").to_numpy(),
                    **{c: answered[f"{c}_{kind}"].to_numpy(dtype=object) for c in COVARIATES},
                    "n": answered["n"].astype("int64").to_numpy(),
                }
            )
        )
    rows = pd.concat(parts, ignore_index=True)
    return rows.sort_values(["cluster", "foreign"], kind="stable").reset_index(drop=True)


def _check_patterns(patterns: pd.DataFrame) -> None:
    missing = [c for c in PATTERN_COLUMNS if c not in patterns]
    if missing:
        raise ValueError(f"patterns lacks columns {missing}")
    for kind in KINDS:
        values = patterns[f"y_{kind}"].dropna()
        if not values.isin([0, 1]).all():
            raise ValueError(f"y_{kind} must be 0, 1 or missing")
    counts = patterns["n"]
    if counts.isna().any() or (counts < 1).any() or (counts != np.floor(counts)).any():
        raise ValueError("n must hold whole numbers of at least 1")


def design(rows: pd.DataFrame, covariates=COVARIATES) -> tuple[np.ndarray, list[str], list[str]]:
    """The design matrix [const, foreign, dummies of each covariate's observed levels but
    the first, in sorted order], its column names, and the covariates used (those with at
    least two observed levels)."""
    columns = [np.ones(len(rows)), rows["foreign"].to_numpy(dtype="float64")]
    names = ["const", "foreign"]
    used = []
    for name in covariates:
        codes, levels = pd.factorize(rows[name], sort=True)
        if len(levels) < 2:
            continue
        used.append(name)
        for index, level in enumerate(levels[1:], start=1):
            columns.append((codes == index).astype("float64"))
            names.append(f"{name}[{level}]")
    return np.column_stack(columns), names, used


def _wald(estimate: float, se: float, z: float) -> tuple[float, float, float, float]:
    """Odds ratio, its interval, and the two-sided p value of a log odds ratio."""
    p_val = float(2 * stats.norm.sf(abs(estimate / se))) if se > 0 else math.nan
    return math.exp(estimate), math.exp(estimate - z * se), math.exp(estimate + z * se), p_val


def _fit_checked(rows: pd.DataFrame, X: np.ndarray) -> GEEFit:
    fit = fit_gee(rows["existed"], X, rows["cluster"], rows["n"])
    if np.abs(X @ fit.params).max() > SEPARATION_LINEAR_PREDICTOR:
        raise FitFailed("separation")
    return fit


def standardised_difference(fit: GEEFit, X: np.ndarray, weight, kind_column: int = 1):
    """Mean predicted probability with the kind set to foreign minus set to Russian, over
    the rows of ``X`` (each counted ``weight`` times), and its delta-method standard error.

    Returns
    -------
    tuple of float
        ``(difference, standard_error)``.
    """
    weight = np.asarray(weight, dtype="float64")
    total = weight.sum()
    as_foreign, as_russian = X.copy(), X.copy()
    as_foreign[:, kind_column] = 1.0
    as_russian[:, kind_column] = 0.0
    p1 = special.expit(as_foreign @ fit.params)
    p0 = special.expit(as_russian @ fit.params)
    difference = float(weight @ (p1 - p0) / total)
    gradient = (
        (weight * p1 * (1 - p1)) @ as_foreign - (weight * p0 * (1 - p0)) @ as_russian
    ) / total
    return difference, float(math.sqrt(max(gradient @ fit.cov @ gradient, 0.0)))


def _estimate(rows: pd.DataFrame, excluded: dict, min_answers: int, z: float) -> dict:
    """The result row of one practice from its answer rows (covariates complete)."""
    out: dict = dict.fromkeys(RESULT_COLUMNS, math.nan)
    kind_n = rows.groupby("foreign")["n"].sum()
    clusters = rows.drop_duplicates("cluster")
    out.update(
        n_respondents=int(clusters["n"].sum()),
        n_answers=int(rows["n"].sum()),
        n_answers_ru=int(kind_n.get(0.0, 0)),
        n_answers_foreign=int(kind_n.get(1.0, 0)),
        n_excluded_ru=int(excluded.get("ru", 0)),
        n_excluded_foreign=int(excluded.get("foreign", 0)),
        working_correlation=None,
        adjusted_for=None,
        note=None,
    )
    if min(out["n_answers_ru"], out["n_answers_foreign"]) < max(min_answers, 1):
        out["note"] = "too_few_answers"
        return out
    X, _names, used = design(rows)
    out["adjusted_for"] = ",".join(used)
    try:
        crude = _fit_checked(rows, X[:, :2])
        se = math.sqrt(crude.cov[1, 1])
        (out["or_unadj"], out["or_unadj_ci_low"], out["or_unadj_ci_high"], out["p_val_unadj"]) = (
            _wald(crude.params[1], se, z)
        )
        fit = _fit_checked(rows, X)
    except FitFailed as failure:
        out["note"] = failure.code
        return out
    se = math.sqrt(fit.cov[1, 1])
    out["log_or_adj"], out["se_log_or_adj"] = float(fit.params[1]), se
    out["or_adj"], out["or_adj_ci_low"], out["or_adj_ci_high"], out["p_val_adj"] = _wald(
        fit.params[1], se, z
    )
    diff, diff_se = standardised_difference(fit, X, rows["n"].to_numpy())
    out.update(
        diff_adj=diff, diff_adj_ci_low=diff - z * diff_se, diff_adj_ci_high=diff + z * diff_se
    )
    out["rho"] = fit.rho
    out["working_correlation"] = "independence" if fit.independence else "exchangeable"
    return out


def adjusted_estimates(
    patterns: pd.DataFrame,
    min_answers: int = 10,
    alpha: float = 0.05,
    items=None,
) -> pd.DataFrame:
    """Foreign vs Russian odds ratios, unadjusted and adjusted for period, role level and
    function, and the adjusted difference in the share "existed", per practice.

    Parameters
    ----------
    patterns : pandas.DataFrame
        Columns :data:`PATTERN_COLUMNS`: per practice, ``n`` respondents who gave the same
        answers ``y_ru``, ``y_foreign`` (1 existed, 0 no, missing: no usable answer) with
        the same covariates ``period_<kind>``, ``role_<kind>``, ``function_<kind>`` (missing
        where the response has none: then that answer is left out).
    min_answers : int, default 10
        A practice with fewer usable answers for either kind gets no estimate
        (``note`` ``too_few_answers``).
    alpha : float, default 0.05
        1 - the confidence level of the intervals.
    items : sequence of str, optional
        The practices to report, in this order (default: those in ``patterns``, sorted);
        one without answers gets a row with zero counts and a note.

    Returns
    -------
    pandas.DataFrame
        One row per practice, columns :data:`RESULT_COLUMNS`: ``n_respondents`` and
        ``n_answers`` (``n_answers_ru``, ``n_answers_foreign``) used, ``n_excluded``
        (answers left out for a missing covariate); ``or_unadj`` and ``or_adj`` with
        ``*_ci_low``, ``*_ci_high`` and ``p_val_*``; ``log_or_adj``, ``se_log_or_adj``;
        ``diff_adj`` (foreign minus Russian, a proportion) with its interval; ``rho`` and
        ``working_correlation``; ``adjusted_for`` (covariates used, comma separated);
        ``note`` (a key of :data:`NOTES`, or None). Missing estimates are NaN.

    Examples
    --------
    >>> patterns = pd.DataFrame(
    ...     [["p", 1, 0, "2022_on", "specialist", "it", "2022_on", "specialist", "it", 3]],
    ...     columns=PATTERN_COLUMNS,
    ... )
    >>> adjusted_estimates(patterns, min_answers=5)["note"].tolist()
    ['too_few_answers']
    """
    from analysis.proportions import _check_alpha

    alpha = _check_alpha(alpha)
    if isinstance(min_answers, bool) or not isinstance(min_answers, int | np.integer):
        raise ValueError(f"min_answers must be a whole number, got {min_answers!r}")
    z = float(stats.norm.ppf(1 - alpha / 2))
    rows = answer_rows(patterns.reset_index(drop=True))
    complete = rows[list(COVARIATES)].notna().all(axis=1)
    order = list(items) if items is not None else sorted(set(patterns["practice_id"]))
    by_practice = dict(tuple(rows[complete].groupby("practice_id", sort=False)))
    counts = _counts(rows, complete).set_index("practice_id")
    empty = rows.iloc[:0]
    out = []
    for pid in order:
        excluded = {
            kind: counts.at[pid, f"n_excluded_{kind}"] if pid in counts.index else 0
            for kind in KINDS
        }
        estimate = _estimate(by_practice.get(pid, empty), excluded, int(min_answers), z)
        out.append({**estimate, "practice_id": pid})
    table = pd.DataFrame(out, columns=RESULT_COLUMNS)
    for column in TEXT_COLUMNS:  # None, not NaN, where there is no text
        table[column] = pd.Series(
            [v if isinstance(v, str) else None for v in table[column]], dtype=object
        )
    return table.astype(dict.fromkeys(COUNT_COLUMNS, "int64"))


TEXT_COLUMNS = ["working_correlation", "adjusted_for", "note"]


COUNT_COLUMNS = [
    "n_answers_ru",
    "n_answers_foreign",
    "n_excluded_ru",
    "n_excluded_foreign",
    "n_respondents",
    "n_answers",
]


def _counts(rows: pd.DataFrame, complete: pd.Series) -> pd.DataFrame:
    kind = np.where(rows["foreign"] == 1.0, "foreign", "ru")
    status = np.where(complete, "answers", "excluded")
    frame = pd.DataFrame(
        {
            "practice_id": rows["practice_id"],
            "column": [f"n_{s}_{k}" for s, k in zip(status, kind, strict=True)],
            "n": rows["n"],
        }
    )
    table = frame.pivot_table(
        index="practice_id", columns="column", values="n", aggfunc="sum", fill_value=0
    )
    table = table.reindex(columns=COUNT_COLUMNS[:4], fill_value=0).reset_index()
    table.columns.name = None
    return table.astype(dict.fromkeys(COUNT_COLUMNS[:4], "int64"))


def answer_counts(patterns: pd.DataFrame) -> pd.DataFrame:
    """Per practice, the answers each kind contributes to the model and those left out
    for a missing covariate: [practice_id, n_answers_ru, n_answers_foreign, n_excluded_ru,
    n_excluded_foreign] (what the disclosure gate judges; no model is fitted).

    Examples
    --------
    >>> patterns = pd.DataFrame(
    ...     [["p", 1, None, "2022_on", "specialist", "it", None, None, None, 4],
    ...      ["p", 0, 1, None, None, None, None, None, None, 2]],
    ...     columns=PATTERN_COLUMNS,
    ... )
    >>> answer_counts(patterns).iloc[0, 1:].astype(int).tolist()
    [4, 0, 2, 2]
    """
    rows = answer_rows(patterns.reset_index(drop=True))
    return _counts(rows, rows[list(COVARIATES)].notna().all(axis=1))
