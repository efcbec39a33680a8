"""Results researchers read: queries + analysis, composed once and cached per data version."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import pandas as pd

from analysis.compare import assumptions_text, compare
from survey import queries
from survey.extensions import db
from survey.questions import BACKGROUND
from survey.responses import catalog

CACHE_SIZE = 64
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

    @property
    def filters(self) -> dict[str, str]:
        """The segment's active filters."""
        return self.segment.filters()


def _compute(segment: queries.Segment) -> Comparison:
    cat = catalog()
    pop = queries.population(segment.include_demo, segment.include_flagged)
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
    return Comparison(
        table=table,
        category_table=category_table,
        n_respondents=queries.count_respondents(segment, pop),
        demo=pop.demo,
        includes_real=pop.use_real,
        segment=segment,
        background=queries.background_counts(segment, pop),
    )


def comparison(segment: queries.Segment) -> Comparison:
    """The comparison for a segment; recomputed only when the stored responses change."""
    database = db.engine.url.render_as_string(hide_password=True)
    key = (database, segment.cache_key(), queries.data_version(), catalog().checksum)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    result = _compute(segment)
    with _lock:
        _cache[key] = result
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return result


def clear_cache() -> None:
    """Forget every cached comparison."""
    with _lock:
        _cache.clear()


def practice_labels(lang: str) -> dict[str, str]:
    """Practice id -> name in ``lang``."""
    return {p.id: p.name.get(lang) for p in catalog().practices}


def category_labels(lang: str) -> dict[str, str]:
    """Category id -> name in ``lang``."""
    return {c.id: c.name.get(lang) for c in catalog().categories}


def sample_description(result: Comparison, lang: str) -> dict:
    """The sample in the report's shape: n and labelled background distributions."""
    background = {}
    for question in BACKGROUND:
        frame = result.background.get(question.field, pd.DataFrame(columns=["code", "n"]))
        counts = dict(zip(frame["code"], frame["n"], strict=True))
        rows = [(o.label(lang), int(counts.get(o.code, 0))) for o in question.options]
        missing = int(counts.get(None, 0))
        if missing:
            rows.append(("—", missing))
        background[question.text(lang)] = rows
    return {"n_respondents": result.n_respondents, "background": background}


def assumptions(lang: str) -> str:
    """What the numbers assume, in ``lang``."""
    return assumptions_text(lang=lang)
