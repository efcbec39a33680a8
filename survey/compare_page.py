"""A respondent's own answers beside everyone's: the page behind "How does your experience
compare?" on the thank-you page (``/compare``).

The shares come from the one read path, :func:`survey.results.comparison` of the
respondent's wave (a pilot wave included: it is named explicitly), through the same
disclosure gate as the dashboards. The page shows them only when that wave has at least
``RESULTS_MIN_N`` real submitted responses: demo rows never count (a comparison that rests
on the demo study is treated as no responses at all), nor do flagged ones (the comparison
leaves them out). A cell the gate withheld shows no share. The respondent's own answers
are decoded from their response's answer vector; nothing here counts answers itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from flask import current_app

from survey import fieldwork
from survey.catalog import Catalog, PracticeEntry
from survey.lazy import LazyModule
from survey.models import Response
from survey.questions import EXISTED, KIND_PLACES, MET_LABELS
from survey.responses import catalog, page_answers

# The read path brings pandas, scipy and statsmodels: imported on the first page that shows
# shares, never in a worker that only takes answers (see survey.lazy).
queries = LazyModule("survey.queries")
results = LazyModule("survey.results")

# Which source a practice's "read more" cites first: the best evidence the catalogue has.
EVIDENCE_ORDER = ("confirmed", "secondary", "memory")


@dataclass(frozen=True)
class Share:
    """One kind of company for one practice: everyone's share and the respondent's answer.

    ``p``, ``low`` and ``high`` are None when the disclosure gate withheld the cell (fewer
    than ``MIN_CELL`` answers); ``own`` is None when the respondent did not work in the kind.
    """

    kind: str
    place: str
    p: float | None
    low: float | None
    high: float | None
    n: int | None
    own: str | None
    own_label: str | None

    @property
    def shown(self) -> bool:
        """Whether the share may be shown (the gate did not withhold it)."""
        return self.p is not None

    @property
    def own_met(self) -> bool:
        """Whether the respondent's own answer says the practice existed there."""
        return self.own in EXISTED

    @staticmethod
    def percent(value: float) -> str:
        """A share as whole percent, for display: "42%"."""
        return f"{100 * value:.0f}%"

    @staticmethod
    def position(value: float) -> str:
        """A share as a position along a bar (an SVG length): "42.3%"."""
        return f"{100 * value:.1f}%"


@dataclass(frozen=True)
class Row:
    """One practice the respondent answered: its texts, one source and both kinds."""

    practice_id: str
    name: str
    description: str
    source: str | None
    shares: tuple[Share, ...]


@dataclass(frozen=True)
class Group:
    """The practices of one category, in the catalogue's order."""

    category_id: str
    name: str
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class ComparePage:
    """What the page shows: the rows when the wave is shown, else why not.

    ``status`` is ``"shown"``, ``"below"`` (fewer than ``min_n`` real responses: ``needed``
    more, or at least ``needed`` more when ``at_least``, since the gate tells no count of a
    segment it withholds) or ``"withheld"`` (the gate withholds the wave for another reason:
    a small sibling wave, for instance; no count is known).
    """

    status: str
    wave_name: str
    min_n: int
    min_cell: int
    n: int | None = None
    needed: int | None = None
    at_least: bool = False
    pilot: bool = False
    groups: tuple[Group, ...] = ()


def min_n() -> int:
    """The configured number of real responses a wave needs before the page appears."""
    return max(int(current_app.config["RESULTS_MIN_N"]), 1)


def source_text(practice: PracticeEntry, cat: Catalog) -> str | None:
    """One source of the catalogue's list for a practice (the best evidence first), as a
    citation line; None for a practice without sources."""
    listed = [cat.sources[s] for s in practice.sources if s in cat.sources]
    if not listed:
        return None
    rank = {level: i for i, level in enumerate(EVIDENCE_ORDER)}
    return min(listed, key=lambda s: rank.get(s.evidence, len(rank))).citation()


def kind_place(kind: str, lang: str) -> str:
    """Where a kind's answers come from, as a heading: "In Russian companies"."""
    ru, en = KIND_PLACES[kind][0]
    text = en if lang == "en" else ru
    return text[:1].upper() + text[1:]


def _number(value) -> float | None:
    """A table value as a float, None when missing or withheld (NaN)."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _cell(row: dict, kind: str) -> tuple[float | None, float | None, float | None, int | None]:
    """(share, interval low, high, answers) of one kind in a comparison row, all None when
    the gate withheld the cell (or the practice has no row)."""
    if bool(row.get(f"suppressed_{kind}", True)):
        return None, None, None, None
    values = [
        _number(row.get(name))
        for name in (f"p_{kind}", f"ci_{kind}_low", f"ci_{kind}_high", f"n_{kind}")
    ]
    if any(v is None for v in values):
        return None, None, None, None
    p, low, high, n = values
    return p, low, high, int(n)


def _shares(row: dict, practice_id: str, own: dict, lang: str) -> tuple[Share, ...]:
    """Both kinds of one practice: the gated shares and the respondent's own answers."""
    out = []
    for kind in queries.KINDS:
        p, low, high, n = _cell(row, kind)
        cell = own.get((practice_id, kind))
        code = cell.met if cell is not None and cell.met != "na" else None
        label = MET_LABELS[code].label(lang) if code in MET_LABELS else None
        out.append(Share(kind, kind_place(kind, lang), p, low, high, n, code, label))
    return tuple(out)


def _groups(result: results.Comparison, response: Response, lang: str) -> tuple[Group, ...]:
    """The practices the respondent answered (in a kind they worked in), by category."""
    cat = catalog()
    own = page_answers(response, cat.practices)
    answered = {pid for (pid, _kind), cell in own.items() if cell.met != "na"}
    table = {r["practice_id"]: r for r in result.table.to_dict("records")}
    groups = []
    for category in cat.categories:
        rows = tuple(
            Row(
                practice_id=p.id,
                name=p.name.get(lang),
                description=p.description.get(lang),
                source=source_text(p, cat),
                shares=_shares(table.get(p.id, {}), p.id, own, lang),
            )
            for p in cat.practices
            if p.category == category.id and p.id in answered
        )
        if rows:
            groups.append(Group(category.id, category.name.get(lang), rows))
    return tuple(groups)


def build(response: Response, lang: str) -> ComparePage:
    """The comparison page of a submitted response, in ``lang``."""
    wave = fieldwork.wave_by_id(response.wave_id)
    wave_name = wave.name_en if lang == "en" else wave.name_ru
    result = results.comparison(queries.Segment(wave=wave.code))
    threshold = result.verdict.min_cell
    needed_n = max(min_n(), threshold)  # the gate shows nothing below MIN_CELL anyway
    base = {"wave_name": wave_name, "min_n": needed_n, "min_cell": threshold}
    if result.demo or not result.includes_real:
        # No real response counted anywhere (the demo study stands in): none in this wave.
        return ComparePage("below", n=0, needed=needed_n, **base)
    if result.suppressed:
        if result.verdict.reason == "too_small":  # fewer than min_cell: no count is told
            at_least = needed_n - (threshold - 1)
            return ComparePage("below", needed=at_least, at_least=True, **base)
        return ComparePage("withheld", **base)
    n = result.n_respondents
    if n < needed_n:
        return ComparePage("below", n=n, needed=needed_n - n, **base)
    return ComparePage(
        "shown", n=n, pilot=result.pilot, groups=_groups(result, response, lang), **base
    )
