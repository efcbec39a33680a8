"""Wave against wave: the prevalence of every practice in two waves, per company kind,
through the disclosure gate and cached like the Russian-vs-foreign comparison.

The statistics are :func:`analysis.waves.compare_waves` over each wave's prevalence counts
from the read path (:func:`survey.queries.practice_counts` of the filters plus the wave).
The gate is the comparison's: each wave's segment must pass
:func:`survey.disclosure.check_segment` as ``/comparison?wave=<code>`` would, and a wave's
cell (a practice and a kind) resting on fewer than ``MIN_CELL`` protected respondents is
withheld with the test that uses it, exactly as :func:`survey.disclosure.mask_comparison`
withholds the comparison's per-kind cells (``n_ru``, ``n_foreign``): so nothing is shown
here that the two waves' own comparisons do not show.

Naming a wave includes it even when it is a pilot wave (whose responses otherwise stay out
of the main analysis); the output labels it as such.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from analysis.compare import multiple_testing
from analysis.display import (
    MISSING,
    STAR,
    difference_with_ci,
    format_p_value,
    format_percent,
    interval,
    item_label,
    signed,
)
from analysis.figures import FOREIGN_COLOR, RU_COLOR
from analysis.waves import COLUMN_GROUPS, COLUMNS, SIDES, assumptions_text, compare_waves, order
from survey import disclosure, fieldwork, filters, queries, results
from survey.responses import catalog

CODE_PARAMS = SIDES  # the query parameters naming the two waves: ?a=CODE&b=CODE
SIGNIFICANCE = 0.05  # q-value below which a row is marked, as in the comparison
_TEXT = {c.name for c in COLUMNS if c.type == "text"}


# ---------------------------------------------------------------- the request


@dataclass(frozen=True)
class WaveQuery:
    """Two waves (their codes) and the filters both are restricted by (no wave filter)."""

    segment: queries.Segment
    a: str
    b: str

    @property
    def codes(self) -> tuple[str, str]:
        """The codes of wave a and wave b."""
        return self.a, self.b

    def wave_segment(self, side: str) -> queries.Segment:
        """The filters restricted to one wave (``side`` "a" or "b"): exactly the segment of
        ``/comparison?wave=<code>`` with the same filters (a pilot wave, named, is in)."""
        return replace(self.segment, wave=self.a if side == "a" else self.b)

    def cache_key(self) -> tuple:
        """A hashable key of both waves' segments (for :func:`survey.results._cached`)."""
        return tuple(self.wave_segment(side).cache_key() for side in SIDES)

    def args(self) -> dict[str, str]:
        """The query parameters that ask for this comparison again (links, CSV)."""
        return {**self.segment.filters(), "a": self.a, "b": self.b}


def segment_from_args(args) -> queries.Segment:
    """The filters of a wave comparison: those of ``/comparison`` except ``wave`` (the two
    waves are ``a`` and ``b``); unknown names and values are a :class:`filters.BadQuery`."""
    if "wave" in args:
        raise filters.BadQuery("wave", _l("not allowed here: choose the two waves with a and b"))
    return filters.segment_from_args(args, CODE_PARAMS, queries.wave_codes)


def codes_from_args(args, required: bool = True) -> tuple[str, str] | None:
    """The two wave codes ``a`` and ``b``: each must name an existing wave, and they must
    differ. With ``required`` False, neither given means None (a page still to choose)."""
    given = {name: args.get(name) or None for name in CODE_PARAMS}
    if not required and not any(given.values()):
        return None
    known = set(queries.wave_codes())
    for name, code in given.items():
        if code is None:
            raise filters.BadQuery(name, _l("required: the code of a wave"))
        if code not in known:
            raise filters.BadQuery(name, _l("no wave has this code"))
    if given["a"] == given["b"]:
        raise filters.BadQuery("b", _l("must name another wave than a"))
    return given["a"], given["b"]


def query_from_args(args) -> WaveQuery:
    """The whole request of the API: the filters and both waves (all checked)."""
    segment = segment_from_args(args)
    a, b = codes_from_args(args)
    return WaveQuery(segment, a, b)


# ---------------------------------------------------------------- the waves


@dataclass(frozen=True)
class WaveInfo:
    """How a wave is named and labelled in the output."""

    code: str
    name_ru: str
    name_en: str
    pilot: bool

    def name(self, lang: str) -> str:
        """The wave's name in ``lang``."""
        return self.name_en if lang == "en" else self.name_ru

    def as_json(self) -> dict:
        """The wave for an API client."""
        return {
            "code": self.code,
            "name": {"ru": self.name_ru, "en": self.name_en},
            "pilot": self.pilot,
        }


def describe(query: WaveQuery) -> dict[str, WaveInfo]:
    """Side -> the wave's names and pilot label, read now (not cached: an owner may rename
    a wave or change its pilot mark without any response changing)."""
    out = {}
    for side, code in zip(SIDES, query.codes, strict=True):
        wave = fieldwork.wave_by_code(code)
        out[side] = WaveInfo(code, wave.name_ru, wave.name_en, bool(wave.is_pilot))
    return out


def wave_options() -> list[WaveInfo]:
    """Every wave, oldest first, for the page's selectors."""
    return [WaveInfo(w.code, w.name_ru, w.name_en, bool(w.is_pilot)) for w in fieldwork.waves()]


# ---------------------------------------------------------------- the comparison


@dataclass(frozen=True)
class WaveComparison:
    """Wave a against wave b: the gated table (:func:`analysis.waves.compare_waves`'s
    columns, then ``suppressed_a``, ``suppressed_b`` and ``min_cell``), or the verdict of
    the wave the gate refuses (``withheld_wave``)."""

    table: pd.DataFrame
    query: WaveQuery
    respondents: dict[str, int]
    demo: bool
    includes_real: bool
    verdict: disclosure.Verdict = field(repr=False)
    withheld_wave: str | None = None

    @property
    def segment(self) -> queries.Segment:
        """The filters both waves are restricted by."""
        return self.query.segment

    @property
    def filters(self) -> dict[str, str]:
        """The active filters (the waves are not among them)."""
        return self.segment.filters()

    @property
    def n_respondents(self) -> int:
        """Respondents of both waves (0 when withheld)."""
        return sum(self.respondents.values())

    @property
    def suppressed(self) -> bool:
        """The disclosure gate refuses a wave's segment: show ``verdict.message()`` only."""
        return not self.verdict.allowed


def mask(table: pd.DataFrame, threshold: int, protected: pd.DataFrame | None = None):
    """The wave table with small cells withheld, by the rule of
    :func:`survey.disclosure.mask_comparison`.

    A wave's cell (its ``n``, ``k``, ``dk``, share and interval) is withheld when its
    ``n`` is below ``threshold``, judged on ``protected`` (the same table over the
    protected rows only) when demo rows are mixed in; the test of a row is withheld when
    either cell is. Withheld numbers become NaN and test names None; ``suppressed_a`` and
    ``suppressed_b`` say which cells, ``min_cell`` holds the threshold, and q-values are
    recomputed over the tests that are shown (the family a reader sees).
    """
    judge = table if protected is None else protected
    if (
        protected is not None
        and not (judge.iloc[:, :2].to_numpy() == table.iloc[:, :2].to_numpy()).all()
    ):
        raise ValueError("the protected table must have the same rows")
    hidden = {side: judge[f"n_{side}"].fillna(0).to_numpy() < threshold for side in SIDES}
    hidden["difference"] = hidden["a"] | hidden["b"]
    out = table.copy()
    for group, flag in hidden.items():
        for name in COLUMN_GROUPS[group]:
            if name in _TEXT:
                out[name] = pd.Series(
                    [None if f else v for v, f in zip(out[name], flag, strict=True)],
                    index=out.index,
                    dtype=object,
                )
            else:
                out[name] = np.where(flag, math.nan, out[name].to_numpy(dtype="float64"))
    out["q_val"] = multiple_testing(out["p_val"].to_numpy(dtype="float64"))
    for side in SIDES:
        out[f"suppressed_{side}"] = hidden[side]
    out["min_cell"] = threshold
    return out


def _compute(query: WaveQuery) -> WaveComparison:
    segments = {side: query.wave_segment(side) for side in SIDES}
    pops = {
        side: queries.population(s.include_demo, s.include_flagged) for side, s in segments.items()
    }
    verdict = None
    for side in SIDES:  # each wave passes the gate as its own comparison would
        verdict = disclosure.check_segment(segments[side], pops[side])
        if not verdict.allowed:  # nothing about either wave is computed
            pop = pops[side]
            return WaveComparison(
                pd.DataFrame(), query, {}, pop.use_demo, pop.use_real, verdict, withheld_wave=side
            )
    items = [p.id for p in catalog().practices]

    def table_of(populations: dict) -> pd.DataFrame:
        counts = [
            queries.practice_counts(segments[side], populations[side])["prevalence"]
            for side in SIDES
        ]
        return compare_waves(*counts, items=items)

    table = table_of(pops)
    protected = {side: queries.protected(pop) for side, pop in pops.items()}
    # Demo rows are no cover: with demo rows mixed in, cells are judged on the real rows.
    guard = table_of(protected) if protected != pops else None
    return WaveComparison(
        table=mask(table, verdict.min_cell, guard),
        query=query,
        respondents={side: queries.count_respondents(segments[side], pops[side]) for side in SIDES},
        demo=any(pop.use_demo for pop in pops.values()),
        includes_real=any(pop.use_real for pop in pops.values()),
        verdict=verdict,
    )


def comparison(query: WaveQuery) -> WaveComparison:
    """Wave a against wave b; recomputed only when the stored responses change (the
    comparison's cache, keyed by both waves' segments and the data version)."""
    return results._cached("waves", query, _compute)  # noqa: SLF001 - one cache for all results


def ungated(query: WaveQuery) -> pd.DataFrame:
    """The table WITHOUT the disclosure gate, uncached: for tests of the statistics only;
    no page or API route may call it."""
    counts = []
    for side in SIDES:
        segment = query.wave_segment(side)
        pop = queries.population(segment.include_demo, segment.include_flagged)
        counts.append(queries.practice_counts(segment, pop)["prevalence"])
    return compare_waves(*counts, items=[p.id for p in catalog().practices])


def assumptions(lang: str) -> str:
    """What the numbers assume (independent samples: no one is linked across waves)."""
    return assumptions_text(lang=lang)


# ---------------------------------------------------------------- display


def kind_label(kind: str) -> str:
    """A company kind's name in the interface language."""
    return _("Russian companies") if kind == "ru" else _("Foreign companies")


def display_rows(table: pd.DataFrame, labels: dict[str, str]) -> list[dict]:
    """The gated table for the page: one dict per row with display strings (shares in %,
    the difference in percentage points with its interval, p and q with four decimals,
    withheld counts as "< MIN_CELL"), ``low_n`` and ``significant`` (q below 0.05)."""
    if table.empty:
        return []
    small = disclosure.small(int(table["min_cell"].iloc[0]))
    test_names = {"chi2": "χ²", "fisher": _("Fisher")}
    out = []
    for row in table.to_dict("records"):
        shown = {}
        for side in SIDES:
            withheld = bool(row[f"suppressed_{side}"])
            shown[f"n_{side}"] = small if withheld else str(int(row[f"n_{side}"]))
            shown[f"p_{side}"] = format_percent(row[f"p_{side}"])
            shown[f"ci_{side}"] = interval(row[f"ci_{side}_low"], row[f"ci_{side}_high"])
        q = row["q_val"]
        out.append(
            {
                "practice_id": row["practice_id"],
                "label": labels.get(row["practice_id"], row["practice_id"]),
                "kind": kind_label(row["company_kind"]),
                **shown,
                "diff": difference_with_ci(row["diff"], row["diff_ci_low"], row["diff_ci_high"]),
                "test": test_names.get(row["test"], MISSING),
                "p_val": format_p_value(row["p_val"]),
                "q_val": format_p_value(q) + (f" {STAR}" if q < SIGNIFICANCE else ""),
                "cohens_h": signed(row["cohens_h"], 2),
                "low_n": bool(row["low_n"]),
                "significant": bool(q < SIGNIFICANCE),
            }
        )
    return out


def csv_frame(segment: queries.Segment, args, lang: str) -> tuple[pd.DataFrame, bool, bool]:
    """The frame of the CSV download, whether demo data is in it and whether a pilot wave
    is: the gated table (withheld counts read "< MIN_CELL"), one row saying why when a wave
    is withheld, or one row asking for the waves when ``a`` and ``b`` are not given."""
    codes = codes_from_args(args, required=False)
    if codes is None:
        pop = queries.population(segment.include_demo, segment.include_flagged)
        ask = {"suppressed": True, "reason": "no_waves", "message": _("Choose two waves.")}
        return pd.DataFrame([ask]), pop.use_demo, False
    query = WaveQuery(segment, *codes)
    result = comparison(query)
    infos = describe(query)
    pilot = any(info.pilot for info in infos.values())
    if result.suppressed:
        withheld = query.codes[SIDES.index(result.withheld_wave)]
        row = {**result.verdict.as_json(), "withheld_wave": withheld}
        return pd.DataFrame([row]), result.demo, pilot
    frame = result.table.copy()
    text = disclosure.small(result.verdict.min_cell)
    for side in SIDES:
        for name in (f"k_{side}", f"dk_{side}"):  # whole numbers, blank where withheld
            frame[name] = frame[name].astype("Int64")
        flag = frame[f"suppressed_{side}"].to_numpy(dtype=bool)
        frame[f"n_{side}"] = [
            text if hidden else ("" if math.isnan(n) else int(n))
            for n, hidden in zip(frame[f"n_{side}"], flag, strict=True)
        ]
    columns = [*order(), *(f"suppressed_{side}" for side in SIDES), "min_cell"]
    frame = frame[columns]
    labels = results.practice_labels(lang)
    frame.insert(1, "practice_name", frame["practice_id"].map(labels))
    for position, side in enumerate(SIDES):
        frame.insert(3 + 2 * position, f"wave_{side}", infos[side].code)
        frame.insert(4 + 2 * position, f"pilot_{side}", infos[side].pilot)
    return frame, result.demo, pilot


def figure(table: pd.DataFrame, labels: dict[str, str], infos: dict[str, WaveInfo], lang: str):
    """The difference ``p_a - p_b`` per practice, one marker per company kind with its
    Newcombe interval (withheld and empty rows have none); practices top to bottom in
    catalogue order."""
    import plotly.graph_objects as go

    ids = list(dict.fromkeys(table["practice_id"]))
    row_of = {pid: i for i, pid in enumerate(ids)}
    fig = go.Figure()
    offsets = {"ru": -0.15, "foreign": 0.15}
    for kind, color, symbol in (("ru", RU_COLOR, "circle"), ("foreign", FOREIGN_COLOR, "diamond")):
        rows = table[(table["company_kind"] == kind) & table["diff"].notna()]
        diff = rows["diff"].to_numpy(dtype=float) * 100
        fig.add_trace(
            go.Scatter(
                x=diff,
                y=[row_of[pid] + offsets[kind] for pid in rows["practice_id"]],
                mode="markers",
                name=kind_label(kind),
                marker={"color": color, "symbol": symbol, "size": 9},
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": rows["diff_ci_high"].to_numpy(dtype=float) * 100 - diff,
                    "arrayminus": diff - rows["diff_ci_low"].to_numpy(dtype=float) * 100,
                    "color": color,
                    "thickness": 1.5,
                    "width": 3,
                },
                hovertext=[
                    f"{html.escape(item_label(labels, pid, lang))}<br>{kind_label(kind)}: "
                    f"{signed(d)} (q = {format_p_value(q)})"
                    for pid, d, q in zip(rows["practice_id"], diff, rows["q_val"], strict=True)
                ],
                hovertemplate="%{hovertext}<extra></extra>",
            )
        )
    a, b = infos["a"].name(lang), infos["b"].name(lang)
    fig.update_yaxes(
        tickmode="array",
        tickvals=list(range(len(ids))),
        ticktext=[html.escape(item_label(labels, pid, lang)) for pid in ids],
        range=[len(ids) - 0.5, -0.5],
        automargin=True,
    )
    fig.update_xaxes(
        title={
            "text": html.escape(_("Difference in shares, %(a)s − %(b)s, pp (95%% CI)", a=a, b=b))
        },
        zeroline=True,
        zerolinecolor="#555",
    )
    fig.update_layout(
        template="plotly_white",
        title={"text": html.escape(_("Prevalence in %(a)s vs %(b)s", a=a, b=b)), "x": 0},
        legend={"orientation": "h", "x": 0, "y": 1, "yanchor": "bottom"},
        height=28 * len(ids) + 190,
        margin={"t": 100},
        meta={"kind": "wave_difference"},
    )
    return fig
