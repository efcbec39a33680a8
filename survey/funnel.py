"""The fieldwork funnel of each wave and channel, and the sample's composition per channel
(or per wave) with chi-square tests of homogeneity: the numbers of the fieldwork page, its
CSV tables and ``GET /api/v1/fieldwork?wave=CODE``.

Funnel steps, in order, with the stable names the API and the CSV use:

``opened``
    links of the channel opened (the daily counter: no cookie, no address);
``consented``
    consents given: the daily counter, which survives a withdrawal or a purge (the
    response's row does not); never fewer than the responses stored (responses from
    before the counters existed have no count), and each demo response counts as one;
``background``
    responses (drafts and submitted) whose work background is saved (``last_page >= 1``);
``practice_<i>``
    responses that saved their i-th practice page, in their own page order
    (``last_page >= i + 1``; see :mod:`survey.questionnaire`);
``submitted``
    submitted responses.

Then the outcomes beside the funnel: ``withdrawn`` (deleted at the respondent's request),
``screened_out`` (thanked after the background by a full quota, nothing kept), ``purged``
(drafts deleted after their time to live or their wave's grace period): daily counters;
``flagged`` (submitted, flagged as a likely bot) and ``low_quality`` (submitted, low
quality by the indicators): stored responses.

Withdrawn, screened-out and purged responses leave the stored steps (background, practice
pages, submitted) with their rows, so those steps count the responses held now, while
``opened`` and ``consented`` count every event. The completion rate is ``submitted /
consented``; the median completion time is the median of the submitted responses'
``active_seconds`` (time on the pages, each capped) in whole minutes, withheld (None)
below ``MIN_CELL`` submitted responses. Demo responses follow the fieldwork numbers' rule
(:func:`survey.queries.fieldwork_conditions`); the counters count real visitors only.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from flask_babel import gettext as _
from scipy import stats

from survey import disclosure, fieldwork, queries, results
from survey.models import DIRECT_CHANNEL, Wave
from survey.questions import BACKGROUND, Question
from survey.responses import catalog

HEAD_STEPS = ("opened", "consented", "background")
OUTCOMES = ("withdrawn", "screened_out", "purged", "flagged", "low_quality")
# A test of homogeneity is flagged unreliable when more than this share of its cells expect
# fewer than five respondents (Cochran's rule), or any cell expects fewer than one.
SMALL_EXPECTED_SHARE = 0.2


def step_names(pages: int | None = None) -> tuple[str, ...]:
    """The funnel's steps, in order (``pages``: practice pages; the catalogue's by default),
    then the outcomes beside it."""
    pages = len(catalog().pages) if pages is None else pages
    practice = tuple(f"practice_{i}" for i in range(1, pages + 1))
    return (*HEAD_STEPS, *practice, "submitted", *OUTCOMES)


def main_steps(steps: tuple[str, ...]) -> tuple[str, ...]:
    """The steps of the funnel itself (without the outcomes beside it)."""
    return tuple(step for step in steps if step not in OUTCOMES)


# ---------------------------------------------------------------- the funnel


@dataclass(frozen=True)
class Line:
    """The funnel of one channel (or of the whole scope: ``channel_id`` None, label "")."""

    channel_id: int | None
    wave: str
    label: str
    pilot: bool
    counts: dict[str, int]
    median_minutes: int | None

    @property
    def opened(self) -> int:
        """Links opened."""
        return self.counts["opened"]

    @property
    def started(self) -> int:
        """Consents given."""
        return self.counts["consented"]

    @property
    def completed(self) -> int:
        """Submitted responses."""
        return self.counts["submitted"]

    @property
    def completion_rate(self) -> float | None:
        """Submitted per consent given (None before any consent)."""
        return self.completed / self.started if self.started else None


@dataclass(frozen=True)
class Funnel:
    """The funnel of a scope (one wave, or the whole study: ``wave`` None), per channel."""

    wave: str | None
    steps: tuple[str, ...]
    total: Line
    channels: list[Line]
    daily: pd.DataFrame  # [day, opened, consented]
    demo: bool
    min_cell: int

    @property
    def several_waves(self) -> bool:
        """Whether the channels come from more than one wave (they are named with it)."""
        return len({line.wave for line in self.channels}) > 1

    def name(self, line: Line) -> str:
        """A channel's name as tables show it: its label, with its wave's code when the
        scope spans several waves."""
        if line.channel_id is None and not line.label:
            return _("All channels")
        label = line.label or "—"
        return f"{line.wave}/{label}" if self.several_waves else label


def scope_wave(segment: queries.Segment) -> Wave | None:
    """The wave a request names (already validated), or None for the whole study."""
    return fieldwork.wave_by_code(segment.wave) if segment.wave else None


def median_minutes(durations: list[tuple[int, int]], threshold: int) -> int | None:
    """The median of ``(seconds, count)`` durations in whole minutes (rounded half up), or
    None for fewer than ``threshold`` durations (a small group's typical time is not shown)."""
    n = sum(count for _seconds, count in durations)
    if n < max(threshold, 1):
        return None
    values = np.repeat([s for s, _c in durations], [c for _s, c in durations])
    return int(math.floor(float(np.median(values)) / 60 + 0.5))


def _tally(counts: Counter, rows, pages: int) -> None:
    """Add one channel's grouped response rows to its tally."""
    for is_demo, status, last_page, flagged, low, n in rows:
        counts["stored_demo" if is_demo else "stored_real"] += n
        if last_page >= 1:
            counts["background"] += n
        for i in range(1, pages + 1):
            if last_page >= i + 1:
                counts[f"practice_{i}"] += n
        if status == "submitted":
            counts["submitted"] += n
            counts["flagged"] += n if flagged else 0
            counts["low_quality"] += n if low else 0


def _finish(counts: Counter, steps: tuple[str, ...]) -> dict[str, int]:
    """A tally as the funnel's counts: consents never fewer than the stored responses."""
    consented = max(counts["counted_consented"], counts["stored_real"]) + counts["stored_demo"]
    out = {step: int(counts[step]) for step in steps}
    out["consented"] = int(consented)
    return out


def funnel(segment: queries.Segment) -> Funnel:
    """The funnel of a segment's scope (its wave, or the whole study), per channel; only
    ``wave`` and ``include_demo`` of the segment count."""
    wave = scope_wave(segment)
    wave_id = wave.id if wave else None
    pop = queries.population(segment.include_demo)
    conditions = queries.fieldwork_conditions(pop, wave_id)
    threshold = disclosure.min_cell()
    pages = len(catalog().pages)
    steps = step_names(pages)
    listed = queries.funnel_channels(wave_id)
    direct = {w: c for c, w, _code, label, _pilot in listed if label == DIRECT_CHANNEL}

    def key(wave_id: int, channel_id: int | None) -> int | None:
        # Demo rows seeded without a channel came the direct way.
        return channel_id if channel_id is not None else direct.get(wave_id)

    grouped: dict[int | None, list] = defaultdict(list)
    for w, c, *row in queries.funnel_counts(conditions):
        grouped[key(w, c)].append(row)
    tallies: dict[int | None, Counter] = defaultdict(Counter)
    for channel_id, rows in grouped.items():
        _tally(tallies[channel_id], rows, pages)
    daily: Counter = Counter()
    if queries.counters_apply(pop):
        for channel_id, day, event, n in queries.channel_day_counts(wave_id):
            name = "counted_consented" if event == "consented" else event
            tallies[channel_id][name] += n
            daily[(day, event)] += n
    durations: dict[int | None, list] = defaultdict(list)
    for w, c, seconds, n in queries.completion_seconds(conditions):
        durations[key(w, c)].append((seconds, n))
    lines = [
        Line(
            c,
            code,
            label,
            pilot,
            _finish(tallies[c], steps),
            median_minutes(durations[c], threshold),
        )
        for c, _w, code, label, pilot in listed
    ]
    if None in tallies:  # rows of a wave without a direct channel (none is expected)
        lines.append(Line(None, "", "—", False, _finish(tallies[None], steps), None))
    total = {step: sum(line.counts[step] for line in lines) for step in steps}
    everything = [d for ds in durations.values() for d in ds]
    return Funnel(
        wave=wave.code if wave else None,
        steps=steps,
        total=Line(
            None,
            wave.code if wave else "",
            "",
            bool(wave and wave.is_pilot),
            total,
            median_minutes(everything, threshold),
        ),
        channels=lines,
        daily=_daily_frame(daily),
        demo=pop.use_demo,
        min_cell=threshold,
    )


def _daily_frame(daily: Counter) -> pd.DataFrame:
    """[day, opened, consented] from the counters, one row per day with either."""
    days = sorted({day for day, event in daily if event in ("opened", "consented")})
    rows = [(day, daily[(day, "opened")], daily[(day, "consented")]) for day in days]
    return pd.DataFrame(rows, columns=["day", "opened", "consented"])


def step_label(step: str, pages: int | None = None) -> str:
    """A step's name for readers, in the interface language."""
    if step.startswith("practice_"):
        pages = len(catalog().pages) if pages is None else pages
        return _("Practice page %(n)d of %(total)d", n=int(step.split("_")[1]), total=pages)
    labels = {
        "opened": _("Link opened"),
        "consented": _("Consent given"),
        "background": _("Work background saved"),
        "submitted": _("Submitted"),
        "withdrawn": _("Withdrawn by the respondent (deleted)"),
        "screened_out": _("Screened out by a full quota (nothing kept)"),
        "purged": _("Unfinished drafts deleted after expiry"),
        "flagged": _("Submitted, flagged as a likely bot"),
        "low_quality": _("Submitted, low quality"),
    }
    return labels[step]


def funnel_table(flow: Funnel) -> pd.DataFrame:
    """Steps by channel: [step, label, all, <one column per channel>], the outcomes last."""
    pages = sum(step.startswith("practice_") for step in flow.steps)
    data = {
        "step": list(flow.steps),
        "label": [step_label(step, pages) for step in flow.steps],
        "all": [flow.total.counts[step] for step in flow.steps],
    }
    for line in flow.channels:
        data[flow.name(line)] = [line.counts[step] for step in flow.steps]
    return pd.DataFrame(data)


def channel_table(flow: Funnel) -> pd.DataFrame:
    """One row per channel: [wave, channel, opened, started, completed, completion_rate,
    median_minutes] (started: consents given; completion rate: completed per consent)."""
    rows = channel_rows(flow)
    columns = ["wave", "channel", "pilot", "opened", "started", "completed"]
    frame = pd.DataFrame(rows, columns=[*columns, "completion_rate", "median_minutes"])
    frame["median_minutes"] = frame["median_minutes"].astype("Int64")  # whole minutes or empty
    return frame


def channel_rows(flow: Funnel) -> list[dict]:
    """The channel table's rows for a template (None where a value is not shown)."""
    return [
        {
            "wave": line.wave,
            "channel": flow.name(line) if flow.several_waves else line.label,
            "pilot": line.pilot,
            "opened": line.opened,
            "started": line.started,
            "completed": line.completed,
            "completion_rate": line.completion_rate,
            "median_minutes": line.median_minutes,
        }
        for line in flow.channels
    ]


def channel_json(flow: Funnel) -> list[dict]:
    """The channels as the API gives them (with each channel's funnel)."""
    return [
        {
            "wave": line.wave,
            "label": line.label,
            "pilot": line.pilot,
            "opened": line.opened,
            "started": line.started,
            "completed": line.completed,
            "completion_rate": line.completion_rate,
            "median_minutes": line.median_minutes,
            "funnel": [{"step": step, "n": line.counts[step]} for step in flow.steps],
        }
        for line in flow.channels
    ]


def daily_table(completed: pd.DataFrame, flow: Funnel) -> pd.DataFrame:
    """[day, opened, consented, completed] per day: the counters beside the completed
    responses (``completed``: :func:`survey.queries.fieldwork`'s daily frame)."""
    done = completed.assign(day=pd.to_datetime(completed["day"]).dt.date)
    counters = flow.daily.assign(day=pd.to_datetime(flow.daily["day"]).dt.date)
    frame = counters.merge(done, on="day", how="outer").fillna(0)
    frame = frame.sort_values("day", kind="mergesort").reset_index(drop=True)
    for column in ("opened", "consented", "completed"):
        frame[column] = frame[column].astype("int64")
    return frame[["day", "opened", "consented", "completed"]]


# ---------------------------------------------------------------- the page's other numbers


def fieldwork_data(segment: queries.Segment) -> dict:
    """The fieldwork numbers (:func:`survey.results.fieldwork`) of the segment's scope.

    For one wave the sample's background is the one the disclosure gate would show for
    that wave (``/comparison?wave=CODE``): withheld as a whole, with the verdict under
    ``sample_verdict``, when the gate refuses the wave (fewer than ``MIN_CELL``
    respondents, or a difference of a few from the whole study).
    """
    wave = scope_wave(segment)
    if wave is None:
        data = results.fieldwork(segment.include_demo)
        data["sample_verdict"] = None
        return data
    data = queries.fieldwork(segment.include_demo, wave.id)
    pop = queries.population(segment.include_demo)
    threshold = disclosure.min_cell()
    scope = queries.Segment(include_demo=segment.include_demo, wave=wave.code)
    verdict = disclosure.check_segment(scope, pop)
    background = results.gated_background(scope, pop, threshold)
    if not verdict.allowed:
        for frame in background.values():
            frame["n"] = math.nan
            frame["suppressed"] = True
    data.update(background=background, min_cell=threshold)
    data["sample_verdict"] = None if verdict.allowed else verdict
    return data


def wave_options(lang: str) -> list[tuple[str, str]]:
    """(code, name) of every wave for the selector, pilots marked."""
    out = []
    for wave in fieldwork.waves():
        name = wave.name_en if lang == "en" else wave.name_ru
        if wave.is_pilot:
            name = f"{name} ({_('pilot')})"
        out.append((wave.code, f"{name} — {wave.code}"))
    return out


# ---------------------------------------------------------------- the sample's composition


@dataclass(frozen=True)
class Group:
    """One column of the composition: the whole scope (``key`` "all"), a channel or a wave."""

    key: str
    name: str
    segment: queries.Segment
    n: int
    n_protected: int
    verdict: disclosure.Verdict


@dataclass(frozen=True)
class Test:
    """A chi-square test of homogeneity of one background question across the groups.

    ``status``: ``shown``, ``withheld`` (a group has fewer than ``MIN_CELL``
    respondents, or the scope is withheld) or ``not_computable`` (fewer than two groups
    or two answered values). ``unreliable``: more than 20% of the cells expect fewer
    than five respondents, or one expects fewer than one (the p-value is then rough).
    """

    status: str
    chi2: float | None = None
    dof: int | None = None
    p_value: float | None = None
    cramers_v: float | None = None
    small_expected_share: float | None = None
    unreliable: bool = False


@dataclass(frozen=True)
class QuestionTable:
    """The distribution of one background question in each group (column 0: all)."""

    question: Question
    codes: list[str | None]
    counts: np.ndarray  # rows: codes; columns: groups
    hidden: np.ndarray  # the same shape: withheld cells
    test: Test


@dataclass(frozen=True)
class Composition:
    """The sample by channel (one wave, or a study with responses in one wave only) or by
    wave (a study with several), each background question with its test."""

    by: str  # "channel" or "wave"
    groups: list[Group]
    verdict: disclosure.Verdict  # of the scope (column 0)
    questions: list[QuestionTable] = field(repr=False)
    demo: bool
    min_cell: int
    pilots_left_out: bool

    @property
    def withheld(self) -> bool:
        """The gate withholds the whole scope: show ``verdict.message()`` only."""
        return not self.verdict.allowed


def composition(segment: queries.Segment) -> Composition:
    """The composition of the segment's scope (only ``wave`` and ``include_demo`` count).

    Each column passes the disclosure gate as the segment it is (the scope; its ``wave``
    and ``channel``; or its ``wave``): a column the gate refuses is withheld as a whole,
    and the cells of the others are masked like the sample description
    (:func:`survey.disclosure.mask_counts`, demo rows no cover). Then
    :func:`protect_margins` withholds more cells until none of the withheld ones can be
    worked out from the columns' totals and the scope's own column. The tests are computed
    on the full table and shown only when every group has at least ``MIN_CELL``
    respondents.
    """
    wave = scope_wave(segment)
    pop = queries.population(segment.include_demo)
    protected = queries.protected(pop)
    threshold = disclosure.min_cell()
    scope = queries.Segment(include_demo=segment.include_demo, wave=wave.code if wave else None)
    verdict = disclosure.check_segment(scope, pop)
    rows = queries.background_by_channel(scope, pop)
    guard_rows = queries.background_by_channel(scope, protected) if protected != pop else []
    waves = {w.id: w for w in fieldwork.waves()}
    by = "channel" if wave is not None or len({row[0] for row in rows}) <= 1 else "wave"
    columns = _columns(by, wave, waves, segment.include_demo)
    counts = _sums(rows, columns.key)
    guards = _sums(guard_rows, columns.key) if protected != pop else counts
    groups = [
        Group(
            "all",
            _("All respondents"),
            scope,
            _size(counts.get("all")),
            _size(guards.get("all")),
            verdict,
        )
    ]
    present = [key for key in columns.order if _size(counts.get(key))]
    for key in present:
        group_segment = columns.segments[key]
        groups.append(
            Group(
                key,
                columns.names[key],
                group_segment,
                _size(counts.get(key)),
                _size(guards.get(key)),
                # One group is the scope itself: the same rows, the same verdict.
                verdict if len(present) == 1 else disclosure.check_segment(group_segment, pop),
            )
        )
    questions = [_question(q, counts, guards, groups, threshold) for q in BACKGROUND]
    return Composition(
        by=by,
        groups=groups,
        verdict=verdict,
        questions=questions,
        demo=pop.use_demo,
        min_cell=threshold,
        pilots_left_out=wave is None and any(w.is_pilot for w in waves.values()),
    )


@dataclass(frozen=True)
class _Columns:
    """How rows (wave id, channel id) map to columns, their order, names and segments."""

    key: object
    order: list[str]
    names: dict[str, str]
    segments: dict[str, queries.Segment]


def _columns(by: str, wave: Wave | None, waves: dict[int, Wave], include_demo: bool) -> _Columns:
    """The columns of the composition: the non-pilot waves, or the scope's channels."""
    listed = queries.funnel_channels(wave.id if wave else None)
    if by == "wave":
        order = [f"w{w.id}" for w in waves.values() if not w.is_pilot]
        names = {f"w{w.id}": w.code for w in waves.values()}
        segments = {
            f"w{w.id}": queries.Segment(include_demo=include_demo, wave=w.code)
            for w in waves.values()
        }
        return _Columns(lambda w, _c: f"w{w}", order, names, segments)
    direct = {w: c for c, w, _code, label, _pilot in listed if label == DIRECT_CHANNEL}
    several = len({w for _c, w, *_ in listed}) > 1
    order = [f"c{c}" for c, *_ in listed]
    names = {f"c{c}": f"{code}/{label}" if several else label for c, _w, code, label, _p in listed}
    segments = {
        f"c{c}": queries.Segment(include_demo=include_demo, wave=code, channel=label)
        for c, _w, code, label, _p in listed
    }

    def key(w: int, c: int | None) -> str:
        # Demo rows seeded without a channel came the direct way.
        return f"c{c if c is not None else direct.get(w)}"

    return _Columns(key, order, names, segments)


def _sums(rows, key) -> dict[str, dict[str, Counter]]:
    """Column key -> field -> code -> respondents, and the scope under "all"."""
    out: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    for w, c, name, code, n in rows:
        out[key(w, c)][name][code] += n
        out["all"][name][code] += n
    return out


def _size(column: dict[str, Counter] | None) -> int:
    """Respondents in a column: every response has one code (or None) per question."""
    if not column:
        return 0
    return int(sum(column[BACKGROUND[0].field].values()))


def _question(
    question: Question,
    counts: dict[str, dict[str, Counter]],
    guards: dict[str, dict[str, Counter]],
    groups: list[Group],
    threshold: int,
) -> QuestionTable:
    """One question's table through the gate, with its test."""
    name = question.field
    unanswered = any(counts[g.key][name].get(None) for g in groups)
    codes: list[str | None] = [*question.codes(), *([None] if unanswered else [])]
    matrix = np.array(
        [[counts[g.key][name].get(code, 0) for g in groups] for code in codes], dtype=np.int64
    )
    hidden = np.zeros(matrix.shape, dtype=bool)
    for j, group in enumerate(groups):
        if not group.verdict.allowed:
            hidden[:, j] = True
            continue
        hidden[:, j] = _masked(counts[group.key][name], question, codes, threshold)
        if guards is not counts:  # demo rows mixed in: judged on the real rows too
            hidden[:, j] |= _masked(guards[group.key][name], question, codes, threshold)
    hidden = protect_margins(matrix, hidden)
    return QuestionTable(question, codes, matrix, hidden, _test(matrix, codes, groups, threshold))


def _masked(column: Counter, question: Question, codes: list, threshold: int) -> np.ndarray:
    """The cells the sample description withholds (:func:`survey.results.full_distribution`
    and :func:`survey.disclosure.mask_counts`), on ``codes`` (a code it does not list, the
    unanswered with none, is an empty cell: withheld)."""
    frame = pd.DataFrame(
        [(code, n) for code, n in column.items() if n], columns=["code", "n"], dtype=object
    )
    masked = disclosure.mask_counts(results.full_distribution(frame, question), threshold)
    by_code = dict(zip(masked["code"], masked["suppressed"], strict=True))
    return np.array([bool(by_code.get(code, True)) for code in codes], dtype=bool)


def protect_margins(counts: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """Withhold more cells of a composition table until no withheld cell can be worked out.

    ``counts`` has one row per answer and one column per group, column 0 being the whole
    scope (each row of it the sum of the others); every column's total is shown. A
    withheld cell can be worked out when it is fixed by these sums and the shown cells:
    it is a combination of the linear system's rows, i.e. the null space of the system
    restricted to the withheld cells is zero at it. While some withheld cell is fixed, the
    smallest shown group cell in its row is withheld (else in its column, else anywhere);
    column 0 is published as the sample description and is never changed here. Without a
    shown group cell left, what remains fixed follows from column 0 alone.

    Returns the new mask (``hidden`` is not changed).
    """
    rows, columns = counts.shape
    hidden = hidden.copy()
    equations = []
    for r in range(rows):  # the scope = the sum of the groups, answer by answer
        e = np.zeros((rows, columns))
        e[r, 0], e[r, 1:] = 1.0, -1.0
        equations.append(e.ravel())
    for c in range(columns):  # each column's total
        e = np.zeros((rows, columns))
        e[:, c] = 1.0
        equations.append(e.ravel())
    system = np.array(equations)
    while hidden.any():
        unknown = np.flatnonzero(hidden.ravel())
        fixed = unknown[_fixed(system[:, unknown])]
        if fixed.size == 0:
            break
        cell = _next_cell(fixed, counts, hidden)
        if cell is None:
            break
        hidden[cell] = True
    return hidden


def _fixed(system: np.ndarray) -> np.ndarray:
    """Which unknowns of ``system @ x = known`` have one possible value."""
    _u, singular, vh = np.linalg.svd(system)
    rank = int((singular > 1e-9 * max(1.0, singular[0] if singular.size else 0.0)).sum())
    null = vh[rank:]
    return np.all(np.abs(null) < 1e-8, axis=0)


def _next_cell(fixed: np.ndarray, counts: np.ndarray, hidden: np.ndarray):
    """The shown group cell to withhold next (see :func:`protect_margins`), or None."""
    columns = counts.shape[1]
    shown = ~hidden
    shown[:, 0] = False  # column 0 is never withheld here
    for index in fixed:
        r, c = divmod(int(index), columns)
        for candidates in (
            [(r, j) for j in range(1, columns) if shown[r, j]],
            [(i, c) for i in range(counts.shape[0]) if c > 0 and shown[i, c]],
        ):
            if candidates:
                return min(candidates, key=lambda cell: (counts[cell], cell))
    rest = [tuple(cell) for cell in np.argwhere(shown)]
    return min(rest, key=lambda cell: (counts[cell], cell)) if rest else None


def _test(matrix: np.ndarray, codes: list, groups: list[Group], threshold: int) -> Test:
    """The chi-square test of homogeneity of the answered values across the groups."""
    if not groups[0].verdict.allowed:
        return Test("withheld")
    answered = np.array([code is not None for code in codes])
    table = matrix[answered][:, 1:]
    keep = table.sum(axis=0) > 0
    table = table[:, keep]
    table = table[table.sum(axis=1) > 0]
    if table.shape[0] < 2 or table.shape[1] < 2:
        return Test("not_computable")
    if any(g.n_protected < threshold for g, k in zip(groups[1:], keep, strict=True) if k):
        return Test("withheld")
    chi2, p_value, dof, expected = stats.chi2_contingency(table)
    small = float((expected < 5).mean())
    return Test(
        status="shown",
        chi2=float(chi2),
        dof=int(dof),
        p_value=float(p_value),
        cramers_v=float(stats.contingency.association(table, method="cramer")),
        small_expected_share=small,
        unreliable=bool(small > SMALL_EXPECTED_SHARE or (expected < 1).any()),
    )


def test_note(test: Test, by: str, threshold: int) -> str:
    """What a reader is told about a test, in the interface language."""
    if test.status == "withheld":
        if by == "wave":
            return _("Test withheld: a wave has fewer than %(n)d respondents.", n=threshold)
        return _("Test withheld: a channel has fewer than %(n)d respondents.", n=threshold)
    if test.status == "not_computable":
        return _("No test: fewer than two groups or two answered values.")
    text = _(
        "Chi-square test of homogeneity: χ² = %(chi2)s, df = %(dof)d, p = %(p)s, Cramér's V = "
        "%(v)s.",
        chi2=f"{test.chi2:.2f}",
        dof=test.dof,
        p=format_p(test.p_value),
        v=f"{test.cramers_v:.2f}",
    )
    if test.unreliable:
        text += " " + _(
            "Unreliable: more than a fifth of the cells expect fewer than 5 respondents (or "
            "one expects fewer than 1); read the p-value as rough."
        )
    return text


def format_p(p: float | None) -> str:
    """A p-value for reading: three decimals, "< 0.001" below."""
    if p is None or not math.isfinite(p):
        return "—"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def composition_view(comp: Composition, lang: str) -> list[dict]:
    """The composition's questions for the page: title, rows of (label, cells as text:
    "n (share)" or "< 10"), the test's note."""
    small = disclosure.small(comp.min_cell)
    out = []
    for table in comp.questions:
        totals = [g.n for g in comp.groups]
        rows = []
        for i, code in enumerate(table.codes):
            label = table.question.label(code, lang) if code is not None else "—"
            cells = []
            for j, n in enumerate(table.counts[i]):
                if table.hidden[i, j]:
                    cells.append(small)
                else:
                    share = f" ({100 * n / totals[j]:.0f}%)" if totals[j] else ""
                    cells.append(f"{int(n)}{share}")
            rows.append({"label": label, "cells": cells})
        out.append(
            {
                "field": table.question.field,
                "title": table.question.text(lang),
                "rows": rows,
                "note": test_note(table.test, comp.by, comp.min_cell),
                "test": table.test,
            }
        )
    return out


def composition_frame(comp: Composition, lang: str) -> pd.DataFrame:
    """The composition as a long CSV table: [question, code, label, group, group_n, n]
    with withheld counts written "< 10" (nothing when the scope is withheld: one row
    saying so)."""
    if comp.withheld:
        return pd.DataFrame([comp.verdict.as_json()])
    small = disclosure.small(comp.min_cell)
    rows = []
    for table in comp.questions:
        for i, code in enumerate(table.codes):
            label = table.question.label(code, lang) if code is not None else ""
            for j, group in enumerate(comp.groups):
                n = small if table.hidden[i, j] else int(table.counts[i, j])
                rows.append((table.question.field, code or "", label, group.name, group.n, n))
    return pd.DataFrame(rows, columns=["question", "code", "label", "group", "group_n", "n"])


def tests_frame(comp: Composition) -> pd.DataFrame:
    """The tests as a CSV table: one row per question (empty numbers where withheld)."""
    if comp.withheld:
        return pd.DataFrame([comp.verdict.as_json()])
    rows = []
    for table in comp.questions:
        test = table.test
        rows.append(
            {
                "question": table.question.field,
                "by": comp.by,
                "groups": len(comp.groups) - 1,
                "status": test.status,
                "chi2": test.chi2,
                "dof": test.dof,
                "p_value": test.p_value,
                "cramers_v": test.cramers_v,
                "small_expected_share": test.small_expected_share,
                "unreliable": test.unreliable,
            }
        )
    return pd.DataFrame(rows)


def overview(segment: queries.Segment, lang: str) -> dict:
    """What the fieldwork page shows of the segment's scope (only ``wave`` and
    ``include_demo`` count): ``data`` (:func:`fieldwork_data`), ``flow``, ``daily``,
    ``steps``, ``channels``, ``composition`` and its ``composition_tables``, ``waves``."""
    data = fieldwork_data(segment)
    flow = funnel(segment)
    sample = composition(segment)
    return {
        "data": data,
        "flow": flow,
        "daily": daily_table(data["daily"], flow),
        "steps": funnel_table(flow),
        "channels": channel_table(flow),
        "channel_rows": channel_rows(flow),
        "composition": sample,
        "composition_tables": composition_view(sample, lang),
        "waves": wave_options(lang),
    }
