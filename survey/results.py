"""Results researchers read: queries + analysis, composed once and cached per data version."""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import pandas as pd
from flask import current_app
from flask_babel import lazy_gettext as _l

from analysis.compare import assumptions_text, compare
from analysis.table import suppressed
from survey import disclosure, filters, queries
from survey.extensions import db
from survey.questions import (
    BACKGROUND,
    KIND_BACKGROUND,
    KIND_BACKGROUND_BY_FIELD,
    KIND_LABELS,
    PERIODS,
    RATING,
)
from survey.responses import catalog

# The sample description: the background questions, then each kind's block (which period,
# role and function the answers about that kind of company come from).
SAMPLE_QUESTIONS = (*BACKGROUND, *KIND_BACKGROUND["ru"], *KIND_BACKGROUND["foreign"])

CACHE_SIZE = 64
EXAMPLES_SHOWN = 200
_cache: OrderedDict[tuple, Comparison] = OrderedDict()
_lock = threading.Lock()


@dataclass(frozen=True)
class Comparison:
    """The Russian-vs-foreign comparison of one segment, at practice and category level."""

    table: pd.DataFrame
    category_table: pd.DataFrame
    n_respondents: int
    demo: bool
    includes_real: bool
    segment: queries.Segment
    background: dict[str, pd.DataFrame] = field(repr=False)
    verdict: disclosure.Verdict = field(repr=False)
    # Responses of a pilot wave are included (queries.includes_pilot): every output says so.
    pilot: bool = False

    @property
    def filters(self) -> dict[str, str]:
        """The segment's active filters."""
        return self.segment.filters()

    @property
    def suppressed(self) -> bool:
        """The disclosure gate withholds this segment: show ``verdict.message()`` only."""
        return not self.verdict.allowed


def _tables(segment: queries.Segment, pop: queries.Population) -> tuple[pd.DataFrame, ...]:
    """The practice and category comparison tables of a segment and population."""
    cat = catalog()
    practice = queries.practice_counts(segment, pop)
    category = queries.category_counts(segment, pop)
    table = compare(
        practice["prevalence"],
        practice["paired"],
        practice["ratings"],
        practice["paired_ratings"],
        items=[p.id for p in cat.practices],
    )
    category_table = compare(
        category["prevalence"],
        category["paired"],
        category["ratings"],
        category["paired_ratings"],
        key="category_id",
        items=[c.id for c in cat.categories],
    )
    return table, category_table


def _in_context(app, function, *args):
    """``function(*args)`` in an application context (and database session) of its own."""
    with app.app_context():
        try:
            return function(*args)
        finally:
            db.session.remove()


def _compute(segment: queries.Segment) -> Comparison:
    pop = queries.population(segment.include_demo, segment.include_flagged)
    verdict = disclosure.check_segment(segment, pop)
    pilot = queries.includes_pilot(segment)
    if not verdict.allowed:  # nothing about the segment is computed, so nothing can leak
        empty = pd.DataFrame()
        return Comparison(empty, empty, 0, pop.use_demo, pop.use_real, segment, {}, verdict, pilot)
    threshold = verdict.min_cell
    # The sample, its size and its structure by kind in one pass over the response table,
    # on a connection of its own while this thread decodes and counts the vectors: the
    # database works outside Python's lock, so on two cores the two overlap.
    app = current_app._get_current_object()
    with ThreadPoolExecutor(max_workers=1) as pool:
        sample = pool.submit(_in_context, app, queries.sample_counts, segment, pop)
        table, category_table = _tables(segment, pop)
        protected = queries.protected(pop)
        # Demo rows are no cover: with demo rows mixed in, cells are judged on the real rows.
        guard_tables = _tables(segment, protected) if protected != pop else (None, None)
        background, n_respondents, structure = sample.result()
    if protected != pop:
        structure = queries.kind_structure(segment, protected)
    return Comparison(
        table=disclosure.mask_comparison(table, threshold, guard_tables[0], structure),
        category_table=disclosure.mask_comparison(
            category_table, threshold, guard_tables[1], structure
        ),
        n_respondents=n_respondents,
        demo=pop.use_demo,
        includes_real=pop.use_real,
        segment=segment,
        background=gated_background(segment, pop, threshold, background),
        verdict=verdict,
        pilot=pilot,
    )


def ungated_comparison(segment: queries.Segment) -> Comparison:
    """The comparison WITHOUT the disclosure gate, uncached.

    For validating the statistics against independent computations on small samples (the
    tests) only: no page, API route, report or export may call it.
    """
    pop = queries.population(segment.include_demo, segment.include_flagged)
    table, category_table = _tables(segment, pop)
    background = queries.background_counts(segment, pop)
    return Comparison(
        table=table,
        category_table=category_table,
        n_respondents=queries.count_respondents(segment, pop),
        demo=pop.use_demo,
        includes_real=pop.use_real,
        segment=segment,
        background={
            q.field: full_distribution(background.get(q.field), q).assign(suppressed=False)
            for q in SAMPLE_QUESTIONS
        },
        verdict=disclosure.UNGATED,
        pilot=queries.includes_pilot(segment),
    )


def _cached(kind: str, segment: queries.Segment, compute):
    """``compute(segment)``, remembered per database, segment, data version, catalogue,
    threshold and pilot waves: recomputed only when the stored responses change (or a
    wave is marked pilot, which changes no response)."""
    key = (
        kind,
        db.engine.url.render_as_string(hide_password=True),
        segment.cache_key(),
        queries.data_version(),
        catalog().checksum,
        disclosure.min_cell(),
        tuple(queries.pilot_wave_ids()),
    )
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    result = compute(segment)
    with _lock:
        _cache[key] = result
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return result


def comparison(segment: queries.Segment) -> Comparison:
    """The comparison for a segment; recomputed only when the stored responses change."""
    return _cached("comparison", segment, _compute)


def clear_cache() -> None:
    """Forget every cached comparison."""
    with _lock:
        _cache.clear()


def examples(practice_id: str, result: Comparison) -> dict[str | None, list[str]]:
    """Free-text examples of a practice by company kind ("ru", "foreign", then None for
    examples whose kind was not stated), only for a segment the gate shows.

    A kind's examples are shown only when the gate shows that kind's cell of the practice
    (how many examples there are would otherwise tell a withheld count's lower bound);
    examples of no stated kind only when both kinds' cells are shown. Kinds with nothing
    to show are left out.
    """
    if result.suppressed:
        return {}
    row = result.table[result.table["practice_id"] == practice_id]
    if row.empty:
        return {}
    hidden = {
        kind: suppressed(kind) in row and bool(row[suppressed(kind)].iloc[0])
        for kind in queries.KINDS
    }
    out: dict[str | None, list[str]] = {}
    for kind in (*queries.KINDS, None):
        withheld = any(hidden.values()) if kind is None else hidden[kind]
        if withheld:
            continue
        texts = queries.examples(practice_id, result.segment, kind, EXAMPLES_SHOWN)
        if texts:
            out[kind] = texts
    return out


def practice_labels(lang: str) -> dict[str, str]:
    """Practice id -> name in ``lang``."""
    return {p.id: p.name.get(lang) for p in catalog().practices}


def category_labels(lang: str) -> dict[str, str]:
    """Category id -> name in ``lang``."""
    return {c.id: c.name.get(lang) for c in catalog().categories}


def rating_labels(lang: str) -> dict[str, str]:
    """Rating ("1".."5") -> its answer option's label in ``lang``, as the questionnaire
    shows it (the rating chart's legend)."""
    return {o.code: o.label(lang) for o in RATING.options}


def full_distribution(frame: pd.DataFrame | None, question) -> pd.DataFrame:
    """[code, n] for every option of a background question (zeros included, then the
    unanswered as code None when there are any), from the sparse GROUP BY result."""
    counts = {} if frame is None else dict(zip(frame["code"], frame["n"], strict=True))
    rows = [(o.code, int(counts.get(o.code, 0))) for o in question.options]
    if counts.get(None):
        rows.append((None, int(counts[None])))
    return pd.DataFrame(rows, columns=["code", "n"])


def masked_background(background: dict[str, pd.DataFrame], threshold: int) -> dict:
    """Every background distribution through the gate's cell rule."""
    return {
        q.field: disclosure.mask_counts(full_distribution(background.get(q.field), q), threshold)
        for q in SAMPLE_QUESTIONS
    }


def gated_background(
    segment: queries.Segment,
    pop: queries.Population,
    threshold: int,
    counts: dict[str, pd.DataFrame] | None = None,
) -> dict:
    """The segment's background distributions, small cells withheld; with demo rows mixed
    in, a cell is also withheld when its real respondents alone are below the threshold.
    ``counts``: :func:`survey.queries.background_counts` of the segment, if already read."""
    if counts is None:
        counts = queries.background_counts(segment, pop)
    masked = masked_background(counts, threshold)
    protected = queries.protected(pop)
    if protected != pop:
        guard = masked_background(queries.background_counts(segment, protected), threshold)
        for name, frame in masked.items():
            hidden = frame["suppressed"].to_numpy() | guard[name]["suppressed"].to_numpy()
            frame["suppressed"] = hidden
            frame["n"] = frame["n"].where(~hidden, math.nan)
    return masked


def fieldwork(include_demo: bool) -> dict:
    """Fieldwork numbers (see :func:`survey.queries.fieldwork`) with the sample's
    background distributions through the disclosure gate."""
    data = queries.fieldwork(include_demo)
    pop = queries.population(include_demo)
    threshold = disclosure.min_cell()
    data["background"] = gated_background(
        queries.Segment(include_demo=include_demo), pop, threshold
    )
    data["min_cell"] = threshold
    return data


def labelled_background(result_background: dict, lang: str, threshold: int) -> dict:
    """Question field -> frame [label, n, display] for tables and charts."""
    out = {}
    for question in SAMPLE_QUESTIONS:
        frame = result_background[question.field]
        unknown = "—" if question in BACKGROUND else not_asked_label(lang)
        labels = [question.label(c, lang) if c is not None else unknown for c in frame["code"]]
        display = [
            disclosure.small(threshold) if hidden else str(int(n))
            for n, hidden in zip(frame["n"], frame["suppressed"], strict=True)
        ]
        table = pd.DataFrame({"label": labels, "n": frame["n"], "display": display})
        table.attrs["title"] = question.text(lang)
        out[question.field] = table
    return out


def not_asked_label(lang: str) -> str:
    """What an empty answer of a kind's block means."""
    if lang == "en":
        return "did not work there, or not asked (before December 2026)"
    return "не работал(а) там или не спрашивали (до декабря 2026 г.)"


def period_lines(result: Comparison, lang: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """Which period each kind's answers refer to, for the comparison page: per kind, each
    period band with its respondents as the gated sample description shows them ("< 10"
    when withheld). Kinds with no anchored respondent in the view are left out."""
    tables = labelled_background(result.background, lang, result.verdict.min_cell)
    out = []
    for kind in queries.KINDS:
        field_name = KIND_BACKGROUND_BY_FIELD[f"{kind}_last_year"].field
        codes = result.background[field_name]["code"].tolist()
        rows = [
            (label, shown)
            for code, (label, n, shown) in zip(
                codes, tables[field_name].itertuples(index=False), strict=True
            )
            if code is not None and not (n == 0)
        ]
        if rows:
            out.append((KIND_LABELS[kind].label(lang), rows))
    return out


def sample_description(result: Comparison, lang: str) -> dict:
    """The sample in the report's shape: n and labelled background distributions
    (withheld cells carry their "< 10" text instead of a count)."""
    tables = labelled_background(result.background, lang, result.verdict.min_cell)
    background = {
        table.attrs["title"]: [
            (label, shown if math.isnan(n) else int(n))
            for label, n, shown in table.itertuples(index=False)
        ]
        for table in tables.values()
    }
    return {"n_respondents": result.n_respondents, "background": background}


def assumptions(lang: str) -> str:
    """What the numbers assume, in ``lang``."""
    return assumptions_text(lang=lang)


# ---------------------------------------------------------------- adjusted estimates
# The columns of analysis.adjusted's table that leave the server: the kind effect only
# (never a covariate's coefficient, which rests on small cells), and the counts it uses.
ADJUSTED_COUNTS = ("n_respondents", "n_answers", "n_answers_ru", "n_answers_foreign")
ADJUSTED_ESTIMATES = (
    "or_unadj",
    "or_unadj_ci_low",
    "or_unadj_ci_high",
    "p_val_unadj",
    "or_adj",
    "or_adj_ci_low",
    "or_adj_ci_high",
    "p_val_adj",
    "diff_adj",
    "diff_adj_ci_low",
    "diff_adj_ci_high",
)


@dataclass(frozen=True)
class Adjusted:
    """Foreign vs Russian companies per practice, adjusted for the period, role level and
    job function of each answer's kind of company (:mod:`analysis.adjusted`), beside the
    unadjusted odds ratio. Responses from before 2026-12 (no such questions) are not in it.

    ``table`` has one row per practice: ``practice_id``, :data:`ADJUSTED_COUNTS`,
    :data:`ADJUSTED_ESTIMATES`, ``adjusted_for``, ``note`` and ``suppressed`` (the gate
    withheld the row: its counts and estimates are NaN).
    """

    table: pd.DataFrame
    n_respondents: int
    demo: bool
    includes_real: bool
    segment: queries.Segment
    verdict: disclosure.Verdict = field(repr=False)
    pilot: bool = False  # responses of a pilot wave are included: every output says so

    @property
    def filters(self) -> dict[str, str]:
        """The segment's active filters."""
        return self.segment.filters()

    @property
    def suppressed(self) -> bool:
        """The disclosure gate withholds this segment: show ``verdict.message()`` only."""
        return not self.verdict.allowed

    def row(self, practice_id: str) -> dict | None:
        """One practice's row as a dict (None when the segment is withheld or unknown)."""
        if self.suppressed:
            return None
        rows = self.table[self.table["practice_id"] == practice_id]
        return None if rows.empty else rows.iloc[0].to_dict()


def mask_adjusted(
    table: pd.DataFrame, threshold: int, protected: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The adjusted table through the gate: only the shown columns, and a practice's row
    withheld (counts and estimates NaN, ``suppressed`` True) when

    * a kind has fewer than ``threshold`` answers in the model (``too_few_answers``), or
    * a kind has 1 to ``threshold - 1`` answers left out for a missing covariate
      (``small_excluded``): the unadjusted comparison counts them, this table does not,
      so the difference would be about those few respondents.

    ``protected`` (:func:`analysis.adjusted.answer_counts` of the protected rows, when demo
    rows are mixed in) is judged too: demo rows are no cover.
    """
    out = table[["practice_id", *ADJUSTED_COUNTS, *ADJUSTED_ESTIMATES, "adjusted_for", "note"]]
    out = out.copy()
    few = pd.Series(False, index=out.index)
    excluded = pd.Series(False, index=out.index)
    judged = [table]
    if protected is not None:
        guard = protected.set_index("practice_id").reindex(table["practice_id"]).fillna(0)
        judged.append(guard.set_index(table.index))
    for counts in judged:
        for kind in queries.KINDS:
            left_out = counts[f"n_excluded_{kind}"]
            few |= counts[f"n_answers_{kind}"] < threshold
            excluded |= (left_out > 0) & (left_out < threshold)
    hidden = few | excluded
    for column in (*ADJUSTED_COUNTS, *ADJUSTED_ESTIMATES):
        out[column] = out[column].astype("float64").where(~hidden, math.nan)
    notes = out["note"].where(~excluded, "small_excluded").where(~few, "too_few_answers")
    for column, values in (("adjusted_for", out["adjusted_for"].where(~hidden)), ("note", notes)):
        out[column] = pd.Series(
            [v if isinstance(v, str) else None for v in values], index=out.index, dtype=object
        )
    out["suppressed"] = hidden.to_numpy()
    return out


def _compute_adjusted(segment: queries.Segment) -> Adjusted:
    from analysis.adjusted import adjusted_estimates, answer_counts

    pop = queries.population(segment.include_demo, segment.include_flagged)
    verdict = disclosure.check_segment(segment, pop)
    pilot = queries.includes_pilot(segment)
    if not verdict.allowed:  # nothing about the segment is computed, so nothing can leak
        return Adjusted(pd.DataFrame(), 0, pop.use_demo, pop.use_real, segment, verdict, pilot)
    threshold = verdict.min_cell
    items = [p.id for p in catalog().practices]
    table = adjusted_estimates(queries.kind_patterns(segment, pop), threshold, items=items)
    protected = queries.protected(pop)
    guard = answer_counts(queries.kind_patterns(segment, protected)) if protected != pop else None
    return Adjusted(
        table=mask_adjusted(table, threshold, guard),
        n_respondents=queries.count_respondents(segment, pop),
        demo=pop.use_demo,
        includes_real=pop.use_real,
        segment=segment,
        verdict=verdict,
        pilot=pilot,
    )


def adjusted(segment: queries.Segment) -> Adjusted:
    """The adjusted estimates for a segment, through the disclosure gate (a refused segment
    gets the comparison's verdict); recomputed only when the stored responses change."""
    return _cached("adjusted", segment, _compute_adjusted)


def by_period(segment: queries.Segment) -> dict[str, Comparison]:
    """The comparison split by the period of each kind's experience: for every band of
    :data:`survey.questions.PERIODS` (oldest first), :func:`comparison` of the segment
    restricted to that band.

    Each band passes the disclosure gate on its own: a band it refuses is a suppressed
    :class:`Comparison` (its verdict, never its counts). A segment that already names a
    period cannot be split by it (:class:`survey.filters.BadQuery` naming ``period``).
    """
    if segment.period is not None:
        raise filters.BadQuery(
            "period", _l("not allowed here: this view shows every period side by side")
        )
    return {band: comparison(replace(segment, period=band)) for band in PERIODS}
