"""The read module: the database into pandas count tables, the one place where the database
meets pandas.

The comparison's count tables (practice and category level) and the adjusted model's
answer patterns come from the responses' answer vectors: one SELECT on ``response`` with
the segment's conditions, decoded and counted with numpy in :mod:`survey.readpath`; no
answer row is read. The other aggregations are a
GROUP BY in the database; no function here loads answers one by one. The count tables have
the shapes documented in :mod:`analysis`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields, make_dataclass, replace

from flask import g
from sqlalchemy import and_, case, func, literal, literal_column, null, or_, select

from survey import readpath
from survey.extensions import db
from survey.lazy import LazyModule
from survey.models import COMPANY_KINDS as KINDS
from survey.models import (
    CatalogVersion,
    Channel,
    Practice,
    PracticeExample,
    Response,
    ResponsePage,
    Wave,
)
from survey.questions import (
    BACKGROUND_BY_FIELD,
    KIND_BACKGROUND_BY_FIELD,
    KIND_WORKERS,
    PERIODS,
    WORKED_IN_KINDS,
    kind_field,
)

pd = LazyModule("pandas")  # the export streams without pandas; only count tables need it

# A restriction per background question (survey.questions.BACKGROUND), in its order: the
# first fields of every Segment, e.g. ``Segment(industry="it")``.
_Background = make_dataclass(
    "_Background",
    [(name, str | None, None) for name in BACKGROUND_BY_FIELD],
    frozen=True,
    namespace={"__module__": __name__},
)
# The segment's yes/no options, "1" in its filters (and in a URL) when set.
FLAGS = ("include_demo", "include_pilot", "include_flagged", "exclude_low_quality")


@dataclass(frozen=True)
class Segment(_Background):
    """A restriction of the sample by respondent background (a field per background
    question: ``worked_in``, ``industry``...), period, wave, channel, language and response
    quality; None means no restriction."""

    # The period a kind's answers refer to (the last year worked in that kind, one of
    # PERIODS): a restriction of ANSWERS, not of respondents. A respondent who worked in
    # Russian companies until 2019 and in foreign ones since 2022 counts, with period
    # 2022_on, among foreign-company answers only. Responses from before 2026-12 (period
    # not asked) drop out of a period-restricted view.
    period: str | None = None
    wave: str | None = None
    # A channel's LABEL ('linkedin'), never its slug: labels are unique within a wave, and
    # the same label in two waves is the same kind of channel (both count).
    channel: str | None = None
    language: str | None = None
    include_demo: bool = False
    # Responses of pilot waves stay out unless asked for, or unless ``wave`` names a pilot
    # wave (see :func:`response_conditions`); a result that includes them is labelled.
    include_pilot: bool = False
    include_flagged: bool = False
    # Leave out responses whose quality indicators mark them low quality (survey/paradata.py);
    # responses never assessed (NULL) stay in.
    exclude_low_quality: bool = False

    def __post_init__(self):
        if self.period is not None and self.period not in PERIODS:
            raise ValueError(f"unknown period {self.period!r}")

    def filters(self) -> dict[str, str]:
        """The active restrictions as a plain dict (for URLs, JSON and report headers)."""
        out = {k: v for k, v in asdict(self).items() if v not in (None, False)}
        for name in FLAGS:
            if out.get(name):
                out[name] = "1"
        return out

    def cache_key(self) -> tuple:
        """A hashable key of the segment."""
        return tuple(getattr(self, f.name) for f in fields(self))


@dataclass(frozen=True)
class Population:
    """Which responses enter the numbers: real, demo, or both (and how that is labelled)."""

    use_real: bool
    use_demo: bool  # any demo (synthetic) response is included: every output must say so


def population(include_demo: bool = False, include_flagged: bool = False) -> Population:
    """Demo responses are shown only when no real response exists, or when asked for.

    A response flagged as a likely bot is not a real one (it is left out of the numbers
    unless flagged responses are asked for): it never hides the demo data by itself.
    """
    conds = [Response.status == "submitted", Response.is_demo.is_(False)]
    if not include_flagged:
        conds.append(Response.quality_flag.is_(None))
    has_real = db.session.scalar(select(literal(1)).where(*conds).limit(1))
    if not has_real:
        # No real response: show the demo study if there is one (labelled), else nothing.
        has_demo = db.session.scalar(select(literal(1)).where(Response.is_demo.is_(True)).limit(1))
        return Population(use_real=False, use_demo=bool(has_demo))
    return Population(use_real=True, use_demo=include_demo)


def response_conditions(segment: Segment, pop: Population | None = None) -> list:
    """WHERE conditions on ``response`` for submitted answers of a segment and population."""
    pop = pop or population(segment.include_demo, segment.include_flagged)
    conds = [Response.status == "submitted"]
    if not pop.use_real and not pop.use_demo:
        conds.append(literal(False))  # an empty study: nothing to count
    if not segment.include_flagged:
        conds.append(Response.quality_flag.is_(None))
    if not pop.use_real:
        conds.append(Response.is_demo.is_(True))
    elif not pop.use_demo:
        conds.append(Response.is_demo.is_(False))
    for name in BACKGROUND_BY_FIELD:
        value = getattr(segment, name)
        if value is not None:
            conds.append(getattr(Response, name) == value)
    if segment.language:
        conds.append(Response.language == segment.language)
    if segment.wave:
        conds.append(Response.wave_id.in_(select(Wave.id).where(Wave.code == segment.wave)))
    elif not segment.include_pilot and (pilots := pilot_wave_ids()):
        conds.append(Response.wave_id.not_in(pilots))
    if segment.channel:
        conds.append(in_channel(segment.channel))
    if segment.exclude_low_quality:
        conds.append(ACCEPTABLE_QUALITY)
    if segment.period:
        conds.append(in_period(segment.period))
    return conds


def pilot_wave_ids() -> list[int]:
    """Ids of the pilot waves (usually none: then no condition is added at all)."""
    return list(db.session.scalars(select(Wave.id).where(Wave.is_pilot.is_(True))))


def lets_in_pilot(segment: Segment) -> bool:
    """Whether the segment's responses may come from pilot waves: it asks for them, or its
    ``wave`` names a pilot wave (named explicitly, the wave is in)."""
    if segment.include_pilot:
        return True
    if not segment.wave:
        return False
    return bool(db.session.scalar(select(Wave.is_pilot).where(Wave.code == segment.wave)))


def includes_pilot(segment: Segment) -> bool:
    """Whether results of the segment include pilot responses and must say so: it lets
    pilot waves in (:func:`lets_in_pilot`) and one of those has a submitted response.

    Decided on the waves alone, never on the segment's other filters, so the label tells
    nothing about a segment the disclosure gate withholds.
    """
    if not lets_in_pilot(segment):
        return False
    waves = select(Wave.id).where(Wave.is_pilot.is_(True))
    if segment.wave:
        waves = waves.where(Wave.code == segment.wave)
    found = select(literal(1)).where(Response.status == "submitted", Response.wave_id.in_(waves))
    return bool(db.session.scalar(found.limit(1)))


def in_channel(label: str):
    """The respondent came through a channel with this label (in any wave)."""
    return Response.channel_id.in_(select(Channel.id).where(Channel.label == label))


def kind_in_period(kind: str, period: str):
    """The respondent worked in ``kind`` and last did so in ``period``."""
    return and_(
        Response.worked_in.in_(KIND_WORKERS[kind]),
        getattr(Response, kind_field(kind, "last_year")) == period,
    )


def in_period(period: str):
    """The respondent has at least one kind of company in ``period``."""
    return or_(*(kind_in_period(kind, period) for kind in KINDS))


def effective_worked_in(segment: Segment):
    """The kinds a response contributes answers to in this segment, as a ``worked_in`` code:
    ``Response.worked_in``, or with a period restriction the kinds in that period (NULL
    when none is)."""
    if not segment.period:
        return Response.worked_in
    ru = kind_in_period("ru", segment.period)
    foreign = kind_in_period("foreign", segment.period)
    return case(
        (and_(ru, foreign), "both"),
        (ru, "ru_only"),
        (foreign, "foreign_only"),
        else_=null(),
    )


# "Not low quality": assessed and acceptable, or never assessed (NULL).
ACCEPTABLE_QUALITY = Response.low_quality.is_not(True)


def protected(pop: Population) -> Population:
    """The rows the disclosure gate protects: the real ones, or the demo ones in a demo-only
    study. Demo rows are never counted as cover for real ones."""
    return Population(use_real=True, use_demo=False) if pop.use_real else pop


def segment_dimensions(segment: Segment) -> list[tuple[str, object]]:
    """The segment's restrictions as (name, condition on ``response``), one per filter."""
    dims: list[tuple[str, object]] = []
    for name in BACKGROUND_BY_FIELD:
        value = getattr(segment, name)
        if value is not None:
            dims.append((name, getattr(Response, name) == value))
    if segment.language:
        dims.append(("language", Response.language == segment.language))
    if segment.wave:
        wave_ids = select(Wave.id).where(Wave.code == segment.wave)
        dims.append(("wave", Response.wave_id.in_(wave_ids)))
    if segment.channel:  # a channel of a few respondents is a small segment like any other
        dims.append(("channel", in_channel(segment.channel)))
    if segment.exclude_low_quality:  # a filter like any other: differencing covers it
        dims.append(("exclude_low_quality", ACCEPTABLE_QUALITY))
    if segment.period:  # keep it last: the gate reads its bit (see segment_lattice)
        dims.append(("period", in_period(segment.period)))
    return dims


def segment_lattice(
    segment: Segment, pop: Population
) -> list[tuple[int, bool, str, int, str, bool]]:
    """Protected submitted responses grouped by which of the segment's filters they meet.

    One GROUP BY returns rows ``(bits, unflagged, worked_in, n, effective, pilot)``: bit i
    of ``bits`` is set when the response meets the segment's i-th filter (see
    :func:`segment_dimensions`); ``effective`` is :func:`effective_worked_in` (the kinds
    in the period, when the segment has one, else ``worked_in`` again). From these the
    disclosure gate knows the size of the segment and of every broader segment that drops
    some of its filters, overall and per kind, without one query per combination.

    Pilot waves are part of the rows only when the segment lets them in
    (:func:`lets_in_pilot`; ``pilot`` marks their rows): otherwise every broader segment
    leaves them out as the segment does.
    """
    dims = segment_dimensions(segment)
    base = protected(pop)
    conds = [Response.status == "submitted"]
    if not base.use_real and not base.use_demo:
        return []
    conds.append(Response.is_demo.is_(not base.use_real))
    pilots = pilot_wave_ids()
    with_pilot = bool(pilots) and lets_in_pilot(segment)
    if pilots and not with_pilot:
        conds.append(Response.wave_id.not_in(pilots))
    flags = [case((cond, 1), else_=0) for _, cond in dims]
    unflagged = case((Response.quality_flag.is_(None), 1), else_=0)
    effective = effective_worked_in(segment).label("effective")
    columns = [*flags, unflagged, Response.worked_in, effective]
    if with_pilot:
        columns.append(case((Response.wave_id.in_(pilots), 1), else_=0))
    rows = db.session.execute(select(*columns, func.count()).where(*conds).group_by(*columns)).all()
    out = []
    k = len(dims)
    for row in rows:
        bits = sum(int(v) << i for i, v in enumerate(row[:k]))
        worked_in, eff = row[k + 1] or "", row[k + 2] or ""
        pilot = bool(row[k + 3]) if with_pilot else False
        out.append((bits, bool(row[k]), worked_in, int(row[-1]), eff, pilot))
    return out


def period_counts(segment: Segment, pop: Population) -> dict[str, dict[str, int]]:
    """For each kind: the protected respondents of the segment WITHOUT its period who worked
    in that kind, per period of that kind (the gate's complementary suppression)."""
    base = protected(pop)
    broader = replace(segment, period=None)
    out: dict[str, dict[str, int]] = {}
    for kind in KINDS:
        column = getattr(Response, kind_field(kind, "last_year"))
        rows = db.session.execute(
            select(column, func.count())
            .where(*response_conditions(broader, base), Response.worked_in.in_(KIND_WORKERS[kind]))
            .group_by(column)
        ).all()
        out[kind] = {period: 0 for period in PERIODS}
        out[kind].update({code: int(n) for code, n in rows if code in PERIODS})
    return out


# Filters whose values partition the respondents and are released side by side: the gate
# withholds a value when its small siblings could be worked out by subtraction.
PARTITIONS = ("wave", "channel", "language")


def sibling_counts(segment: Segment, pop: Population, name: str) -> dict[str, int]:
    """The protected respondents of the segment WITHOUT its ``name`` filter, per value of
    that filter (a wave code, a channel label, a language): the gate's secondary
    suppression across a partition (see :func:`survey.disclosure.withheld_siblings`)."""
    if name not in PARTITIONS:
        raise ValueError(f"not a partition filter: {name!r}")
    base = protected(pop)
    broader = replace(segment, **{name: None})
    key = {
        "wave": Wave.code,
        "channel": Channel.label,
        "language": Response.language,
    }[name]
    stmt = (
        select(key, func.count()).select_from(Response).where(*response_conditions(broader, base))
    )
    if name == "wave":
        stmt = stmt.join(Wave, Wave.id == Response.wave_id)
    elif name == "channel":
        stmt = stmt.join(Channel, Channel.id == Response.channel_id)
    rows = db.session.execute(stmt.group_by(key)).all()
    return {str(value): int(n) for value, n in rows if value is not None}


def kind_structure(segment: Segment, pop: Population) -> dict[str, int]:
    """Respondents of the segment by the kinds they contribute answers to (a ``worked_in``
    code; with a period, the kinds in that period): the gate's secondary suppression."""
    effective = effective_worked_in(segment)
    rows = db.session.execute(
        select(effective, func.count())
        .where(*response_conditions(segment, pop))
        .group_by(effective)
    ).all()
    return {code: int(n) for code, n in rows if code}


def wave_codes() -> list[str]:
    """Codes of every wave (for validating a filter)."""
    return list(db.session.scalars(select(Wave.code)))


def channel_labels() -> list[str]:
    """The distinct labels of every wave's channels, sorted (for validating a filter and
    for the export's codebook); never a slug."""
    return list(db.session.scalars(select(Channel.label).distinct().order_by(Channel.label)))


def examples(practice_id: str, segment: Segment, kind: str | None, limit: int) -> list[str]:
    """Respondents' free-text examples of a practice in one kind of company, in a segment
    (``kind`` None: examples whose kind was not stated, written before there was a box
    per kind).

    Ordered by the responses' random export ids, so the order says nothing about when
    or in which order people answered.
    """
    same_kind = (
        PracticeExample.company_kind.is_(None)
        if kind is None
        else PracticeExample.company_kind == kind
    )
    if segment.period:
        # Like the answers: a kind's examples only from respondents whose experience of that
        # kind is in the period; examples of no stated kind predate periods altogether.
        same_kind = (
            literal(False)
            if kind is None
            else and_(same_kind, kind_in_period(kind, segment.period))
        )
    stmt = (
        select(PracticeExample.text)
        .join(Response, Response.id == PracticeExample.response_id)
        .where(PracticeExample.practice_id == practice_id, same_kind, *response_conditions(segment))
        .order_by(Response.export_id)
        .limit(limit)
    )
    return list(db.session.scalars(stmt))


def count_respondents(segment: Segment, pop: Population | None = None) -> int:
    """Submitted responses in the segment."""
    return db.session.scalar(
        select(func.count(Response.id)).where(*response_conditions(segment, pop))
    )


# What readpath.decode reads of each response, in its order.
VECTOR_COLUMNS = (
    Response.catalog_version_id,
    Response.answer_code,
    Response.worked_in,
    Response.ru_last_year,
    Response.foreign_last_year,
)


def _vector_blocks(segment: Segment, pop: Population | None) -> list[readpath.Block]:
    """The answer vectors of the segment's responses, decoded (:func:`readpath.decode`):
    one SELECT of five columns on ``response``, no answer row read.

    The practice and the category tables of one view decode the same vectors: the last
    decoding is kept for the rest of the application context (a request), keyed by the
    segment, the population and the data version, which every write that changes a
    submitted response bumps in its own transaction.
    """
    from survey.responses import layout  # cached per application: a snapshot never changes

    pop = pop or population(segment.include_demo, segment.include_flagged)
    key = (segment.cache_key(), pop, data_version())
    kept = g.get("survey_vector_blocks")
    if kept is not None and kept[0] == key:
        return kept[1]
    stmt = select(*VECTOR_COLUMNS).where(*response_conditions(segment, pop))
    blocks = readpath.decode(_plain_rows(stmt), layout, segment.period)
    g.survey_vector_blocks = (key, blocks)
    return blocks


def _plain_rows(stmt) -> list[tuple]:
    """Every row of a SELECT as the driver returns it (plain tuples), on the session's
    connection and transaction.

    On reads of a whole study SQLAlchemy's Row objects cost more than the driver's fetch
    itself (README, "Performance, measured"). Only for statements whose bound values need
    no type conversion (strings, numbers, booleans).
    """
    cursor = _plain_cursor(stmt)
    try:
        return cursor.fetchall()
    finally:
        cursor.close()


def _plain_cursor(stmt):
    """A driver cursor on which a SELECT has been executed (see :func:`_plain_rows`)."""
    connection = db.session.connection()
    compiled = stmt.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.params
    if compiled.positional:
        params = tuple(params[name] for name in compiled.positiontup)
    cursor = connection.connection.cursor()
    try:
        cursor.execute(str(compiled), params)
    except BaseException:
        cursor.close()
        raise
    return cursor


def answer_counts(
    segment: Segment, pop: Population | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Prevalence counts [practice_id, company_kind, yes, no, dk] and rating counts
    [practice_id, company_kind, rating, n] (see :func:`practice_counts`)."""
    tables = practice_counts(segment, pop)
    return tables["prevalence"], tables["ratings"]


def paired_counts(
    segment: Segment, pop: Population | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Among respondents who worked in both kinds: paired counts
    [practice_id, yes_yes, yes_no, no_yes, no_no] and paired ratings
    [practice_id, rating_ru, rating_foreign, n] (see :func:`practice_counts`)."""
    tables = practice_counts(segment, pop)
    return tables["paired"], tables["paired_ratings"]


def category_counts(segment: Segment, pop: Population | None = None) -> dict[str, pd.DataFrame]:
    """The four count tables at category level (key column ``category_id``).

    A respondent's category-level answer about a kind: 'yes' if any practice of the
    category existed, else 'dk' if any answer is don't know, else 'no'; its rating is the
    mean of the respondent's ratings in the category, rounded half away from zero. The
    paired tables count every respondent with a category-level answer about both kinds
    (see :func:`readpath.category_histograms`). A practice's category is its current one
    (table ``practice``), whichever catalogue version asked it.
    """
    category_of = dict(db.session.execute(select(Practice.id, Practice.category_id)).all())
    return readpath.category_tables(_vector_blocks(segment, pop), category_of)


def practice_counts(segment: Segment, pop: Population | None = None) -> dict[str, pd.DataFrame]:
    """The four count tables at practice level (key column ``practice_id``): prevalence
    [practice_id, company_kind, yes, no, dk] ('yes': any EXISTED code; 'na' and
    'not_my_role' left out), ratings [practice_id, company_kind, rating, n], and among
    respondents who worked in both kinds the paired counts [practice_id, yes_yes, yes_no,
    no_yes, no_no] and paired ratings [practice_id, rating_ru, rating_foreign, n].
    Counted from the answer vectors (:mod:`survey.readpath`)."""
    return readpath.practice_tables(_vector_blocks(segment, pop))


def background_counts(segment: Segment, pop: Population | None = None) -> dict[str, pd.DataFrame]:
    """Sample description: for each background question and each kind's block question,
    [code, n] over the segment (code None: not answered, or a kind not worked in, or not
    asked before 2026-12)."""
    return sample_counts(segment, pop)[0]


def sample_counts(
    segment: Segment, pop: Population | None = None
) -> tuple[dict[str, pd.DataFrame], int, dict[str, int]]:
    """(:func:`background_counts`, the number of respondents, :func:`kind_structure`) of a
    segment and population, from ONE pass over the response table.

    Every (question, code) is a ``COUNT(*) FILTER (WHERE ...)``, so the table is scanned
    once, not once per question (a GROUP BY each), and no column is fetched only to be
    counted in pandas (the timings of the three ways are in the README, "Performance,
    measured").
    """
    questions = {**BACKGROUND_BY_FIELD, **KIND_BACKGROUND_BY_FIELD}
    keys: list[tuple[str, str | None]] = []
    counts_of = []
    for name, question in questions.items():
        column = getattr(Response, name)
        for code in (*question.codes(), None):
            keys.append((name, code))
            counts_of.append(
                func.count().filter(column.is_(None) if code is None else column == code)
            )
    effective = effective_worked_in(segment)
    structure_codes = tuple(WORKED_IN_KINDS)
    counts_of += [func.count().filter(effective == code) for code in structure_codes]
    counts_of.append(func.count())
    row = db.session.execute(select(*counts_of).where(*response_conditions(segment, pop))).one()
    counts: dict[str, list[tuple[str | None, int]]] = {name: [] for name in questions}
    for (name, code), n in zip(keys, row[: len(keys)], strict=True):
        if n:
            counts[name].append((code, int(n)))
    background = {name: pd.DataFrame(rows, columns=["code", "n"]) for name, rows in counts.items()}
    tail = row[len(keys) :]
    structure = {code: int(n) for code, n in zip(structure_codes, tail[:-1], strict=True) if n}
    return background, int(tail[-1]), structure


def data_version() -> int:
    """The stored data's version, for caching computed results: one row read.

    Database triggers change it in the same transaction as anything that alters what
    results show (a submitted response inserted, updated or deleted; see migration 0010
    and ``survey.models.DataVersion``); a draft's page save leaves it alone.
    """
    from survey.models import DataVersion

    return db.session.scalar(select(DataVersion.version).where(DataVersion.id == 1))


def quality_counts(demo_cond: list) -> dict[str, int]:
    """Submitted responses each quality indicator flags (nothing is dropped silently):
    ``assessed``, ``fictitious_claimed``, ``straightlining`` (on any page), ``speeding``
    (on any page) and ``low_quality``; one query."""

    def flagged(condition):
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    row = db.session.execute(
        select(
            flagged(Response.low_quality.is_not(None)),
            flagged(Response.fictitious_claimed.is_(True)),
            flagged(Response.straightlined_pages > 0),
            flagged(Response.speeding_pages > 0),
            flagged(Response.low_quality.is_(True)),
        ).where(*demo_cond, Response.status == "submitted")
    ).one()
    names = ("assessed", "fictitious_claimed", "straightlining", "speeding", "low_quality")
    return dict(zip(names, (int(v) for v in row), strict=True))


def language_switches(demo_cond: list) -> int:
    """Submitted responses whose answer pages (background and practices) were saved in more
    than one interface language, each page counted in the language of its latest save."""
    switched = (
        select(ResponsePage.response_id)
        .join(Response, Response.id == ResponsePage.response_id)
        .where(*demo_cond, Response.status == "submitted", ResponsePage.language.is_not(None))
        .group_by(ResponsePage.response_id)
        .having(func.count(func.distinct(ResponsePage.language)) > 1)
    )
    return int(db.session.scalar(select(func.count()).select_from(switched.subquery())))


def fieldwork(include_demo: bool = False, wave_id: int | None = None) -> dict:
    """Fieldwork numbers: completed and started responses, completion, drop-off, daily counts
    (the sample's background comes through :func:`survey.results.fieldwork`), of the whole
    study or of one wave.

    Drop-off uses each response's furthest page: ``reached[i]`` counts responses (drafts and
    submitted) that got to page i or further.
    """
    pop = population(include_demo)
    demo_cond = fieldwork_conditions(pop, wave_id)
    by_status = dict(
        db.session.execute(
            select(Response.status, func.count()).where(*demo_cond).group_by(Response.status)
        ).all()
    )
    flagged = db.session.scalar(
        select(func.count()).where(
            *demo_cond, Response.status == "submitted", Response.quality_flag.is_not(None)
        )
    )
    quality = quality_counts(demo_cond)
    completed = int(by_status.get("submitted", 0))
    drafts = int(by_status.get("draft", 0))
    furthest = db.session.execute(
        select(Response.last_page, func.count()).where(*demo_cond).group_by(Response.last_page)
    ).all()
    daily = db.session.execute(
        select(Response.submitted_on, func.count())
        .where(*demo_cond, Response.status == "submitted")
        .group_by(Response.submitted_on)
        .order_by(Response.submitted_on)
    ).all()
    return {
        "completed": completed,
        "flagged": int(flagged),
        "drafts": drafts,
        "started": completed + drafts,
        "completion_rate": completed / (completed + drafts) if completed + drafts else None,
        "furthest_page": {int(page): int(n) for page, n in furthest},
        "quality": quality,
        "language_switched": language_switches(demo_cond),
        "daily": pd.DataFrame(daily, columns=["day", "completed"]),
        "demo": pop.use_demo,
        "includes_real": pop.use_real,
    }


def kind_patterns(
    segment: Segment, pop: Population | None = None, practice_ids=None
) -> pd.DataFrame:
    """Respondents per practice grouped by answer pattern, for the adjusted model
    (:mod:`analysis.adjusted`): [practice_id, y_ru, y_foreign, period_ru, role_ru,
    function_ru, period_foreign, role_foreign, function_foreign, n].

    ``y_<kind>`` is 1 (the practice existed: any EXISTED code), 0 ('no'), or NULL (don't
    know, a kind not worked in, not my role, or outside the segment's period); the
    covariates are the response's ``<kind>_last_year``, ``_role_level`` and ``_function``
    (NULL in responses from before 2026-12). A respondent with no 1/0 answer for the
    practice is left out. Counted from the answer vectors and the covariates of the
    segment's responses, one SELECT on ``response`` (:func:`readpath.kind_patterns`).
    """
    from survey.responses import layout  # cached per application: a snapshot never changes

    covariates = [
        getattr(Response, kind_field(kind, name))
        for kind in KINDS
        for name in ("last_year", "role_level", "function")
    ]
    stmt = select(*VECTOR_COLUMNS, *covariates).where(*response_conditions(segment, pop))
    rows = _plain_rows(stmt)
    labels = [f"{c}_{kind}" for kind in KINDS for c in ("period", "role", "function")]
    frame = pd.DataFrame(
        {label: [row[5 + i] for row in rows] for i, label in enumerate(labels)}, dtype=object
    )
    blocks = readpath.decode(rows, layout, segment.period)
    return readpath.kind_patterns(blocks, frame, practice_ids)


# -- the export's reads ----------------------------------------------------------------------
# The export (survey/export/) reads through these functions: the released quasi-identifiers
# are planned on grouped counts, the rows come in keyset chunks of one response row each
# (its answer vector, never the answer rows), and paradata and examples by chunk of ids.
LEGACY_CHARACTERS = "yABCDE"  # a former "met it" answer (vectors.py alphabet)
CURRENT_CHARACTERS = "12345pemr"  # applied, existed, not my role: only the scale since 2026-12


def _contains_any(column, characters: str):
    """SQL: whether a text column holds any of the characters, case-sensitively: a GLOB
    on SQLite (its LIKE ignores case), a regular expression on PostgreSQL, both with a
    character class of ``characters`` (letters and digits only)."""
    if not characters.isalnum():
        raise ValueError("only letters and digits may form the character class")
    dialect = db.session.get_bind().dialect.name
    if dialect == "sqlite":
        return column.op("GLOB")(f"*[{characters}]*")
    if dialect == "postgresql":
        return column.op("~")(f"[{characters}]")
    stripped = column  # any other database: strip each character and compare lengths
    for character in characters:
        stripped = func.replace(stripped, character, "")
    return func.length(stripped) < func.length(column)


def scale_flags() -> list:
    """Per response: it has a former "met it" answer (``legacy``); it has an answer only the
    scale since 2026-12 has (``current``: applied, existed, not my role, or a "mixed"
    rating, which is an applied answer). Read from the answer vector."""
    return [
        _contains_any(Response.answer_code, LEGACY_CHARACTERS).label("legacy"),
        _contains_any(Response.answer_code, CURRENT_CHARACTERS).label("current"),
    ]


def export_keys(
    conditions: list, stored: tuple[str, ...], size: int = 10_000
) -> Iterator[list[tuple]]:
    """The raw quasi-identifiers of every selected response, in batches of ``size``
    rows: ``(id, export_id, is_demo, wave_id, channel_id, submitted_on, language, legacy,
    current, *stored)``, where ``stored`` names response columns (plain driver tuples:
    ``submitted_on`` is a date on PostgreSQL and ISO text on SQLite).

    Not grouped in the database: nearly every response of a study has a combination of its
    own, so grouping gains nothing, and SQLite's GROUP BY is slower than counting them in
    Python (README, "Performance, measured").
    """
    columns = [
        Response.id,
        Response.export_id,
        Response.is_demo,
        Response.wave_id,
        Response.channel_id,
        Response.submitted_on,
        Response.language,
        *scale_flags(),
        *(getattr(Response, name) for name in stored),
    ]
    cursor = _plain_cursor(select(*columns).where(*conditions))
    try:
        while rows := cursor.fetchmany(size):
            yield rows
    finally:
        cursor.close()


def export_vectors(ids: list[int]) -> list[tuple]:
    """``(id, export_id, catalog_version_id, answer_code)`` of the responses with these
    ids, in the order of ``ids`` (a response deleted since is left out).

    The export reads its responses by primary key, in an order it sorted itself (by random
    id): a keyset query ordered by ``export_id`` made SQLite sort every remaining response
    for each chunk, and PostgreSQL cannot use the unique index for a byte order. The ids
    are written into the statement as integers (compiling thousands of bound parameters
    took longer than the query)."""
    stmt = select(
        Response.id, Response.export_id, Response.catalog_version_id, Response.answer_code
    ).where(Response.id.op("IN")(literal_column(f"({_ID_LIST})")))
    sql = str(stmt.compile(dialect=db.session.get_bind().dialect))
    listed = ",".join(str(int(i)) for i in ids) or "NULL"
    cursor = db.session.connection().connection.cursor()
    try:
        cursor.execute(sql.replace(_ID_LIST, listed, 1))
        found = {row[0]: row for row in cursor.fetchall()}
    finally:
        cursor.close()
    return [found[i] for i in ids if i in found]


_ID_LIST = "__survey_export_ids__"


def export_paradata(ids: list[int], flags: tuple[str, ...]) -> tuple[dict, dict]:
    """Paradata of a chunk of responses: ``{id: (question_order, active_seconds, *flags,
    languages)}`` with the set of languages its answer pages were saved in last, and
    ``{(id, page): (seconds, straightlining, speeding)}``."""
    connection = db.session.connection()
    own_rows = connection.execute(
        select(
            Response.id,
            Response.question_order,
            Response.active_seconds,
            *(getattr(Response, name) for name in flags),
        ).where(Response.id.in_(ids))
    )
    languages: dict[int, set[str]] = {i: set() for i in ids}
    pages = {}
    for rid, page, seconds, flat, fast, language in connection.execute(
        select(
            ResponsePage.response_id,
            ResponsePage.page,
            ResponsePage.seconds,
            ResponsePage.straightlining,
            ResponsePage.speeding,
            ResponsePage.language,
        ).where(ResponsePage.response_id.in_(ids))
    ):
        pages[(rid, page)] = (seconds, flat, fast)
        if language:
            languages[rid].add(language)
    own = {row[0]: (*row[1:], languages[row[0]]) for row in own_rows}
    return own, pages


def export_examples(ids: list[int]) -> list[tuple]:
    """Free-text examples of a chunk of responses: ``(response_id, practice_id,
    company_kind, text)``, unordered."""
    return db.session.execute(
        select(
            PracticeExample.response_id,
            PracticeExample.practice_id,
            PracticeExample.company_kind,
            PracticeExample.text,
        ).where(PracticeExample.response_id.in_(ids))
    ).all()


def practice_names(exclude: list[str]) -> list[tuple[str, str, str]]:
    """``(id, Russian name, English name)`` of every stored practice not in ``exclude``
    (practices retired from the catalogue), in their stored order."""
    rows = db.session.execute(
        select(Practice.id, Practice.name_ru, Practice.name_en)
        .where(Practice.id.not_in(exclude))
        .order_by(Practice.position)
    )
    return [tuple(row) for row in rows]


def waves() -> list[tuple[int, str, str, str]]:
    """``(id, code, Russian name, English name)`` of every wave, oldest first."""
    rows = db.session.execute(
        select(Wave.id, Wave.code, Wave.name_ru, Wave.name_en).order_by(Wave.id)
    )
    return [tuple(row) for row in rows]


def quota_counts(wave_id: int, cells: list[tuple[str, str]]) -> tuple[int, dict]:
    """Completed responses of a wave, and of each (background field, code) cell of its
    quotas: ``(completed, {(field, code): n})`` in one pass. Completed means submitted,
    not demo and not flagged as a likely bot (the responses the analysis counts by default;
    a bot must not fill a quota cell). Pilot waves count their own responses."""
    conds = [
        Response.wave_id == wave_id,
        Response.status == "submitted",
        Response.is_demo.is_(False),
        Response.quality_flag.is_(None),
    ]
    cells = [cell for cell in dict.fromkeys(cells) if cell[0] in BACKGROUND_BY_FIELD]
    counts_of = [func.count().filter(getattr(Response, field) == code) for field, code in cells]
    row = db.session.execute(select(func.count(), *counts_of).where(*conds)).one()
    return int(row[0]), {cell: int(n) for cell, n in zip(cells, row[1:], strict=True)}


def invitation_counts(wave_id: int) -> dict[int, tuple[int, int]]:
    """Per channel id of a wave: its single-use invitations ``(generated, used)``; channels
    without any are absent."""
    from survey.models import Channel, Invitation

    rows = db.session.execute(
        select(Invitation.channel_id, func.count(), func.count(Invitation.used_on))
        .join(Channel, Channel.id == Invitation.channel_id)
        .where(Channel.wave_id == wave_id)
        .group_by(Invitation.channel_id)
    )
    return {int(cid): (int(generated), int(used)) for cid, generated, used in rows}


def channels() -> list[tuple[int, str, str]]:
    """``(id, label, wave code)`` of every channel, oldest wave and channel first (the
    export's channel column releases the label, never the slug)."""
    rows = db.session.execute(
        select(Channel.id, Channel.label, Wave.code)
        .join(Wave, Wave.id == Channel.wave_id)
        .order_by(Wave.id, Channel.id)
    )
    return [tuple(row) for row in rows]


def catalog_snapshots() -> list[tuple[str, str, dict]]:
    """``(version, checksum, snapshot)`` of every stored catalogue version, oldest first."""
    rows = db.session.execute(
        select(CatalogVersion.version, CatalogVersion.checksum, CatalogVersion.content).order_by(
            CatalogVersion.id
        )
    )
    return [tuple(row) for row in rows]


# -- the funnel per wave and channel (survey/funnel.py) ----------------------------------------
def fieldwork_conditions(pop: Population, wave_id: int | None = None) -> list:
    """WHERE conditions on ``response`` (drafts included) of the fieldwork numbers: the
    demo rows when they stand in for a study with no real submitted response, else the
    real rows and, when asked for, the demo rows too; of one wave if given.

    A study whose real respondents have only drafts so far (and no demo data) shows those
    drafts: the funnel must fill from the first consent, not from the first submission.
    """
    conds = []
    if pop.use_demo and not pop.use_real:
        conds.append(Response.is_demo.is_(True))
    elif not pop.use_demo:
        conds.append(Response.is_demo.is_(False))
    if wave_id is not None:
        conds.append(Response.wave_id == wave_id)
    return conds


def counters_apply(pop: Population) -> bool:
    """Whether the daily channel counters (real visitors' events) belong to the fieldwork
    numbers of this population: not when demo rows stand in for the study."""
    return not (pop.use_demo and not pop.use_real)


def funnel_channels(wave_id: int | None = None) -> list[tuple[int, int, str, str, bool]]:
    """``(channel id, wave id, wave code, label, pilot)`` of every channel (of one wave),
    oldest wave and channel first."""
    stmt = (
        select(Channel.id, Channel.wave_id, Wave.code, Channel.label, Wave.is_pilot)
        .join(Wave, Wave.id == Channel.wave_id)
        .order_by(Wave.id, Channel.id)
    )
    if wave_id is not None:
        stmt = stmt.where(Channel.wave_id == wave_id)
    return [
        (int(c), int(w), code, label, bool(pilot))
        for c, w, code, label, pilot in db.session.execute(stmt)
    ]


def funnel_counts(conditions: list) -> list[tuple]:
    """Responses (drafts and submitted) grouped by ``(wave id, channel id, is_demo, status,
    last_page, flagged as a likely bot, low quality)``, with their number: one GROUP BY.
    ``channel id`` is NULL for demo rows seeded without one."""
    flagged = case((Response.quality_flag.is_not(None), 1), else_=0)
    low = case((Response.low_quality.is_(True), 1), else_=0)
    columns = [
        Response.wave_id,
        Response.channel_id,
        Response.is_demo,
        Response.status,
        Response.last_page,
        flagged,
        low,
    ]
    rows = db.session.execute(select(*columns, func.count()).where(*conditions).group_by(*columns))
    return [
        (int(w), c, bool(demo), status, int(page or 0), bool(f), bool(lq), int(n))
        for w, c, demo, status, page, f, lq, n in rows
    ]


def completion_seconds(conditions: list) -> list[tuple[int, int | None, int, int]]:
    """Submitted responses grouped by ``(wave id, channel id, active_seconds)`` with their
    number: the durations the medians are taken from (a duration; no time of day is kept)."""
    columns = [Response.wave_id, Response.channel_id, Response.active_seconds]
    rows = db.session.execute(
        select(*columns, func.count())
        .where(*conditions, Response.status == "submitted")
        .group_by(*columns)
    )
    return [(int(w), c, int(s or 0), int(n)) for w, c, s, n in rows]


def channel_day_counts(wave_id: int | None = None) -> list[tuple[int, object, str, int]]:
    """``(channel id, day, event, count)`` of the daily channel counters (of one wave's
    channels), ordered by day."""
    from survey.models import ChannelDay

    stmt = select(ChannelDay.channel_id, ChannelDay.day, ChannelDay.event, ChannelDay.count)
    if wave_id is not None:
        stmt = stmt.where(
            ChannelDay.channel_id.in_(select(Channel.id).where(Channel.wave_id == wave_id))
        )
    rows = db.session.execute(stmt.order_by(ChannelDay.day, ChannelDay.channel_id))
    return [(int(c), day, event, int(n)) for c, day, event, n in rows]


def background_by_channel(
    segment: Segment, pop: Population | None = None
) -> list[tuple[int, int | None, str, str | None, int]]:
    """The segment's submitted responses per ``(wave id, channel id)`` and background
    answer: rows ``(wave id, channel id, field, code, n)`` (code None: not answered), only
    non-zero counts; one pass over the response table (``COUNT(*) FILTER`` per code, as
    :func:`sample_counts`)."""
    keys: list[tuple[str, str | None]] = []
    counts_of = []
    for name, question in BACKGROUND_BY_FIELD.items():
        column = getattr(Response, name)
        for code in (*question.codes(), None):
            keys.append((name, code))
            counts_of.append(
                func.count().filter(column.is_(None) if code is None else column == code)
            )
    group = [Response.wave_id, Response.channel_id]
    rows = db.session.execute(
        select(*group, *counts_of).where(*response_conditions(segment, pop)).group_by(*group)
    )
    out = []
    for row in rows:
        for (name, code), n in zip(keys, row[2:], strict=True):
            if n:
                out.append((int(row[0]), row[1], name, code, int(n)))
    return out
