"""SQL aggregation into pandas count tables: the one place where the database meets pandas.

Every query is a GROUP BY in the database; no function here loads answers one by one.
The count tables have the shapes documented in :mod:`analysis`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from sqlalchemy import Integer as SAInteger
from sqlalchemy import Numeric, and_, case, cast, func, literal, null, or_, select

from survey.extensions import db
from survey.lazy import LazyModule
from survey.models import Answer, Practice, PracticeExample, Response, ResponsePage, Wave
from survey.questions import (
    BACKGROUND_BY_FIELD,
    EXISTED,
    KIND_BACKGROUND_BY_FIELD,
    NOT_ASKED,
    PERIODS,
    WORKED_IN_KINDS,
    kind_field,
)

KINDS = ("ru", "foreign")
pd = LazyModule("pandas")  # the export streams without pandas; only count tables need it


@dataclass(frozen=True)
class Segment:
    """A restriction of the sample by respondent background; None means no restriction."""

    worked_in: str | None = None
    current_employer: str | None = None
    industry: str | None = None
    company_size: str | None = None
    role_level: str | None = None
    job_function: str | None = None
    experience_band: str | None = None
    region: str | None = None
    # The period a kind's answers refer to (the last year worked in that kind, one of
    # PERIODS): a restriction of ANSWERS, not of respondents. A respondent who worked in
    # Russian companies until 2019 and in foreign ones since 2022 counts, with period
    # 2022_on, among foreign-company answers only. Responses from before 2026-12 (period
    # not asked) drop out of a period-restricted view.
    period: str | None = None
    wave: str | None = None
    language: str | None = None
    include_demo: bool = False
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
        for name in ("include_demo", "include_flagged", "exclude_low_quality"):
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
    use_demo: bool

    @property
    def demo(self) -> bool:
        """True when any demo (synthetic) response is included: every output must say so."""
        return self.use_demo


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
    if segment.exclude_low_quality:
        conds.append(ACCEPTABLE_QUALITY)
    if segment.period:
        conds.append(in_period(segment.period))
    return conds


def kind_in_period(kind: str, period: str):
    """The respondent worked in ``kind`` and last did so in ``period``."""
    return and_(
        Response.worked_in.in_(KIND_WORKERS[kind]),
        getattr(Response, kind_field(kind, "last_year")) == period,
    )


def in_period(period: str):
    """The respondent has at least one kind of company in ``period``."""
    return or_(*(kind_in_period(kind, period) for kind in KINDS))


def answer_conditions(segment: Segment) -> list:
    """WHERE conditions on ``answer`` (joined to ``response``): answers that count at all
    (not a kind not worked in, not "not my role"), and the segment's period restriction,
    which keeps each kind's answers only when that kind's period matches."""
    conds = [Answer.met.not_in(NOT_ASKED)]
    if segment.period:
        conds.append(
            or_(
                *(
                    and_(Answer.company_kind == kind, kind_in_period(kind, segment.period))
                    for kind in KINDS
                )
            )
        )
    return conds


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


# Any of the stored codes that say the practice existed, grouped as 'yes' for the count
# tables (applied to me, existed but not for me, and the former "met it").
MET_GROUP = case((Answer.met.in_(EXISTED), "yes"), else_=Answer.met)

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
    if segment.exclude_low_quality:  # a filter like any other: differencing covers it
        dims.append(("exclude_low_quality", ACCEPTABLE_QUALITY))
    if segment.period:  # keep it last: the gate reads its bit (see segment_lattice)
        dims.append(("period", in_period(segment.period)))
    return dims


def segment_lattice(segment: Segment, pop: Population) -> list[tuple[int, bool, str, int, str]]:
    """Protected submitted responses grouped by which of the segment's filters they meet.

    One GROUP BY returns rows ``(bits, unflagged, worked_in, n, effective)``: bit i of
    ``bits`` is set when the response meets the segment's i-th filter (see
    :func:`segment_dimensions`); ``effective`` is :func:`effective_worked_in` (the kinds
    in the period, when the segment has one, else ``worked_in`` again). From these the
    disclosure gate knows the size of the segment and of every broader segment that drops
    some of its filters, overall and per kind, without one query per combination.
    """
    dims = segment_dimensions(segment)
    base = protected(pop)
    conds = [Response.status == "submitted"]
    if not base.use_real and not base.use_demo:
        return []
    conds.append(Response.is_demo.is_(not base.use_real))
    flags = [case((cond, 1), else_=0) for _, cond in dims]
    unflagged = case((Response.quality_flag.is_(None), 1), else_=0)
    effective = effective_worked_in(segment).label("effective")
    columns = [*flags, unflagged, Response.worked_in, effective]
    rows = db.session.execute(select(*columns, func.count()).where(*conds).group_by(*columns)).all()
    out = []
    for row in rows:
        bits = sum(int(v) << i for i, v in enumerate(row[: len(dims)]))
        worked_in, eff = row[len(dims) + 1] or "", row[len(dims) + 2] or ""
        out.append((bits, bool(row[len(dims)]), worked_in, int(row[-1]), eff))
    return out


def period_counts(segment: Segment, pop: Population) -> dict[str, dict[str, int]]:
    """For each kind: the protected respondents of the segment WITHOUT its period who worked
    in that kind, per period of that kind (the gate's complementary suppression)."""
    base = protected(pop)
    broader = Segment(**{**asdict(segment), "period": None})
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


KIND_WORKERS = {
    kind: tuple(code for code, kinds in WORKED_IN_KINDS.items() if kind in kinds) for kind in KINDS
}


def count_respondents(segment: Segment, pop: Population | None = None) -> int:
    """Submitted responses in the segment."""
    return db.session.scalar(
        select(func.count(Response.id)).where(*response_conditions(segment, pop))
    )


def answer_counts(
    segment: Segment, pop: Population | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Prevalence counts [practice_id, company_kind, yes, no, dk] and rating counts
    [practice_id, company_kind, rating, n], from one GROUP BY over the answers."""
    met = MET_GROUP.label("met")
    stmt = (
        select(Answer.practice_id, Answer.company_kind, met, Answer.rating, func.count())
        .join(Response, Response.id == Answer.response_id)
        .where(*response_conditions(segment, pop), *answer_conditions(segment))
        .group_by(Answer.practice_id, Answer.company_kind, met, Answer.rating)
    )
    rows = db.session.execute(stmt).all()
    raw = pd.DataFrame(rows, columns=["practice_id", "company_kind", "met", "rating", "n"])
    return _prevalence_from(raw, "practice_id"), _ratings_from(raw, "practice_id")


def _prevalence_from(raw: pd.DataFrame, key: str) -> pd.DataFrame:
    columns = [key, "company_kind", "yes", "no", "dk"]
    if raw.empty:
        return pd.DataFrame(columns=columns).astype({"yes": int, "no": int, "dk": int})
    table = raw.pivot_table(
        index=[key, "company_kind"], columns="met", values="n", aggfunc="sum", fill_value=0
    )
    table = table.reindex(columns=["yes", "no", "dk"], fill_value=0).reset_index()
    table.columns.name = None
    return table[columns].astype({"yes": int, "no": int, "dk": int})


def _ratings_from(raw: pd.DataFrame, key: str) -> pd.DataFrame:
    rated = raw[(raw["met"] == "yes") & raw["rating"].notna()]
    out = rated.groupby([key, "company_kind", "rating"], as_index=False)["n"].sum()
    out["rating"] = out["rating"].astype(int)
    out["n"] = out["n"].astype(int)
    return out[[key, "company_kind", "rating", "n"]]


def _paired_from(raw: pd.DataFrame, key: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Paired counts and paired rating counts from [key, met_ru, met_fo, r_ru, r_fo, n]."""
    both = raw[raw["met_ru"].isin(["yes", "no"]) & raw["met_fo"].isin(["yes", "no"])]
    cells = {
        "yes_yes": ("yes", "yes"),
        "yes_no": ("yes", "no"),
        "no_yes": ("no", "yes"),
        "no_no": ("no", "no"),
    }
    paired = pd.DataFrame({key: sorted(both[key].unique())})
    for name, (ru, fo) in cells.items():
        sel = both[(both["met_ru"] == ru) & (both["met_fo"] == fo)]
        sums = sel.groupby(key)["n"].sum()
        paired[name] = paired[key].map(sums).fillna(0).astype(int)
    rated = raw[raw["r_ru"].notna() & raw["r_fo"].notna()]
    ratings = rated.groupby([key, "r_ru", "r_fo"], as_index=False)["n"].sum()
    ratings = ratings.rename(columns={"r_ru": "rating_ru", "r_fo": "rating_foreign"})
    ratings = ratings.astype({"rating_ru": int, "rating_foreign": int, "n": int})
    return paired, ratings[[key, "rating_ru", "rating_foreign", "n"]]


def paired_counts(
    segment: Segment, pop: Population | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Among respondents who worked in both kinds: paired counts
    [practice_id, yes_yes, yes_no, no_yes, no_no] and paired ratings
    [practice_id, rating_ru, rating_foreign, n]."""
    per_response = (
        select(
            Answer.practice_id.label("practice_id"),
            func.max(case((Answer.company_kind == "ru", MET_GROUP))).label("met_ru"),
            func.max(case((Answer.company_kind == "foreign", MET_GROUP))).label("met_fo"),
            func.max(case((Answer.company_kind == "ru", Answer.rating))).label("r_ru"),
            func.max(case((Answer.company_kind == "foreign", Answer.rating))).label("r_fo"),
        )
        .join(Response, Response.id == Answer.response_id)
        .where(
            *response_conditions(segment, pop),
            *answer_conditions(segment),
            Response.worked_in == "both",
        )
        .group_by(Answer.response_id, Answer.practice_id)
        .subquery()
    )
    stmt = select(
        per_response.c.practice_id,
        per_response.c.met_ru,
        per_response.c.met_fo,
        per_response.c.r_ru,
        per_response.c.r_fo,
        func.count(),
    ).group_by(*per_response.c)
    rows = db.session.execute(stmt).all()
    raw = pd.DataFrame(rows, columns=["practice_id", "met_ru", "met_fo", "r_ru", "r_fo", "n"])
    return _paired_from(raw, "practice_id")


def _category_per_response(segment: Segment, pop: Population | None):
    """Per (response, category, kind): met any practice of the category, and the mean rating.

    Category-level 'yes' = met at least one practice of the category; 'no' = answered
    'no' for every practice of the category; otherwise 'dk'. The rating is the
    respondent's mean rating over the category's practices they met, rounded half up.
    """
    yes = func.sum(case((Answer.met.in_(EXISTED), 1), else_=0))
    dk = func.sum(case((Answer.met == "dk", 1), else_=0))
    met = case((yes > 0, "yes"), (dk > 0, "dk"), else_="no")
    # NUMERIC, not a float: PostgreSQL rounds a double half to even (2.5 -> 2) but a
    # numeric half away from zero, like SQLite's round() (2.5 -> 3).
    mean = func.avg(cast(Answer.rating, Numeric))
    rating = cast(func.round(mean), SAInteger)  # half away from zero on both databases
    return (
        select(
            Answer.response_id.label("response_id"),
            Practice.category_id.label("category_id"),
            Answer.company_kind.label("company_kind"),
            met.label("met"),
            rating.label("rating"),
        )
        .join(Response, Response.id == Answer.response_id)
        .join(Practice, Practice.id == Answer.practice_id)
        .where(*response_conditions(segment, pop), *answer_conditions(segment))
        .group_by(Answer.response_id, Practice.category_id, Answer.company_kind)
        .subquery()
    )


def category_counts(segment: Segment, pop: Population | None = None) -> dict[str, pd.DataFrame]:
    """The four count tables at category level (key column ``category_id``)."""
    inner = _category_per_response(segment, pop)
    rows = db.session.execute(
        select(
            inner.c.category_id, inner.c.company_kind, inner.c.met, inner.c.rating, func.count()
        ).group_by(inner.c.category_id, inner.c.company_kind, inner.c.met, inner.c.rating)
    ).all()
    raw = pd.DataFrame(rows, columns=["category_id", "company_kind", "met", "rating", "n"])
    ru = inner.alias("ru")
    fo = inner.alias("fo")
    paired_rows = db.session.execute(
        select(ru.c.category_id, ru.c.met, fo.c.met, ru.c.rating, fo.c.rating, func.count())
        .join(
            fo,
            and_(
                fo.c.response_id == ru.c.response_id,
                fo.c.category_id == ru.c.category_id,
                fo.c.company_kind == "foreign",
            ),
        )
        .where(ru.c.company_kind == "ru")
        .group_by(ru.c.category_id, ru.c.met, fo.c.met, ru.c.rating, fo.c.rating)
    ).all()
    praw = pd.DataFrame(
        paired_rows, columns=["category_id", "met_ru", "met_fo", "r_ru", "r_fo", "n"]
    )
    paired, paired_ratings = _paired_from(praw, "category_id")
    return {
        "prevalence": _prevalence_from(raw, "category_id"),
        "ratings": _ratings_from(raw, "category_id"),
        "paired": paired,
        "paired_ratings": paired_ratings,
    }


def practice_counts(segment: Segment, pop: Population | None = None) -> dict[str, pd.DataFrame]:
    """The four count tables at practice level (key column ``practice_id``)."""
    prevalence, ratings = answer_counts(segment, pop)
    paired, paired_ratings = paired_counts(segment, pop)
    return {
        "prevalence": prevalence,
        "ratings": ratings,
        "paired": paired,
        "paired_ratings": paired_ratings,
    }


def background_counts(segment: Segment, pop: Population | None = None) -> dict[str, pd.DataFrame]:
    """Sample description: for each background question and each kind's block question,
    [code, n] over the segment (code None: not answered, or a kind not worked in, or not
    asked before 2026-12)."""
    conds = response_conditions(segment, pop)
    out = {}
    for name in (*BACKGROUND_BY_FIELD, *KIND_BACKGROUND_BY_FIELD):
        column = getattr(Response, name)
        rows = db.session.execute(select(column, func.count()).where(*conds).group_by(column)).all()
        out[name] = pd.DataFrame(rows, columns=["code", "n"])
    return out


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


def fieldwork(include_demo: bool = False) -> dict:
    """Fieldwork numbers: completed and started responses, completion, drop-off, daily counts
    (the sample's background comes through :func:`survey.results.fieldwork`).

    Drop-off uses each response's furthest page: ``reached[i]`` counts responses (drafts and
    submitted) that got to page i or further.
    """
    pop = population(include_demo)
    demo_cond = []
    if not pop.use_real:
        demo_cond.append(Response.is_demo.is_(True))
    elif not pop.use_demo:
        demo_cond.append(Response.is_demo.is_(False))
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
        "demo": pop.demo,
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
    practice is left out. One GROUP BY over a per-response GROUP BY (the covariates are
    joined after it: about a quarter faster on SQLite than grouping by them inside).
    """
    existed = case((Answer.met.in_(EXISTED), 1), (Answer.met == "no", 0), else_=null())
    conds = [*response_conditions(segment, pop), *answer_conditions(segment)]
    if practice_ids is not None:
        conds.append(Answer.practice_id.in_(list(practice_ids)))
    per_response = (
        select(
            Answer.response_id.label("response_id"),
            Answer.practice_id.label("practice_id"),
            *(
                func.max(case((Answer.company_kind == kind, existed))).label(f"y_{kind}")
                for kind in KINDS
            ),
        )
        .join(Response, Response.id == Answer.response_id)
        .where(*conds)
        .group_by(Answer.response_id, Answer.practice_id)
        .subquery()
    )
    covariates = [
        getattr(Response, kind_field(kind, name))
        for kind in KINDS
        for name in ("last_year", "role_level", "function")
    ]
    columns = [per_response.c.practice_id, per_response.c.y_ru, per_response.c.y_foreign]
    rows = db.session.execute(
        select(*columns, *covariates, func.count())
        .join(Response, Response.id == per_response.c.response_id)
        .where(or_(per_response.c.y_ru.is_not(None), per_response.c.y_foreign.is_not(None)))
        .group_by(*columns, *covariates)
    ).all()
    labels = [f"{c}_{kind}" for kind in KINDS for c in ("period", "role", "function")]
    frame = pd.DataFrame(rows, columns=["practice_id", "y_ru", "y_foreign", *labels, "n"])
    frame = frame.astype({"y_ru": "float64", "y_foreign": "float64", "n": "int64"})
    frame[labels] = frame[labels].astype(object).where(frame[labels].notna(), None)
    return frame
