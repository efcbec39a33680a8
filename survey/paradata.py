"""Paradata: each respondent's question order, the seconds spent per page, quality indicators.

**Order.** At consent every respondent gets their own order, drawn once and stored with the
response (``response.question_order``): the order of the practice pages, the order of the
practices within each page, and which kind of company's column comes first. The positions
themselves are stored, not a seed: a seed means something only to this exact shuffling
code over this exact catalogue, while the positions (keyed by page key and practice id) stay
readable whatever changes later. A response without a stored order (from before
randomisation, or a demo row) was shown the catalogue's order, Russian companies first.

**Quality indicators** (computed at submit by :func:`assess`, recomputable):

* *straightlining* on a page: for at least one kind of company, every practice on the page
  (at least :data:`STRAIGHTLINE_MIN_ITEMS`) got the identical answer as stored: the ``met``
  code, the rating and "mixed / can't say" alike;
* *speeding* on a page: the page was open less than :data:`SPEEDING_FRACTION` of that page's
  median seconds over submitted real responses (not judged until the page has
  :data:`MEDIAN_MIN_SAMPLE` timed responses; unknown seconds are never speeding);
* *over-claiming*: the fictitious practice reported as existing (any code of
  :data:`survey.questions.EXISTED`: "applied", "existed", or the former "yes"), in either
  kind;
* *low quality*: over-claiming, or straightlining on at least half of the practice pages,
  or speeding on at least half of them. Only the researcher's filter ``exclude_low_quality``
  leaves these responses out; by default every response counts.
"""

from __future__ import annotations

import math
import random
import secrets
import statistics
import time
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from survey.catalog import Catalog, Page
from survey.extensions import db
from survey.models import COMPANY_KINDS, Answer, FictitiousAnswer, Response, ResponsePage
from survey.questions import EXISTED

BACKGROUND_PAGE = "background"  # the work-background page's key in response_page
STRAIGHTLINE_MIN_ITEMS = 3
SPEEDING_FRACTION = 0.3
MEDIAN_MIN_SAMPLE = 20  # timed responses a page needs before speeding on it is judged
ESTIMATE_MIN_SAMPLE = 30  # submitted responses before the landing estimate is measured
RECENT = 2000  # medians come from the most recent submitted responses (bounded cost)
CACHE_SECONDS = 600


# Durations leave the server in bands (paradata.csv of survey/export/): upper bounds, seconds.
PAGE_BANDS = (10, 30, 60, 120, 300, 600)
TOTAL_BANDS = (300, 600, 900, 1200, 1800, 2700, 3600)


def band(seconds: int | None, bounds: tuple[int, ...]) -> str:
    """A duration as its band: ``30-59`` for 42 with bounds (..., 30, 60, ...); ``600+``
    above the last bound; empty when unknown."""
    if seconds is None:
        return ""
    low = 0
    for high in bounds:
        if seconds < high:
            return f"{low}-{high - 1}"
        low = high
    return f"{low}+"


def band_labels(bounds: tuple[int, ...]) -> list[str]:
    """Every band of :func:`band`, in order."""
    edges = [0, *bounds]
    return [f"{lo}-{hi - 1}" for lo, hi in zip(edges, bounds, strict=False)] + [f"{bounds[-1]}+"]


# -- order ---------------------------------------------------------------------------------
def order_seed() -> int:
    """A fresh random seed for one respondent's order (a function, so tests can fix it)."""
    return secrets.randbits(64)


def draw_order(cat: Catalog, seed: int) -> dict:
    """A random question order over the catalogue's pages, as stored in ``question_order``."""
    rng = random.Random(seed)  # noqa: S311 - a question order, not a secret
    pages = [page.key for page in cat.pages]
    rng.shuffle(pages)
    practices = {}
    for page in cat.pages:
        ids = [p.id for p in page.practices]
        rng.shuffle(ids)
        practices[page.key] = ids
    return {"pages": pages, "practices": practices, "first_kind": rng.choice(COMPANY_KINDS)}


@dataclass(frozen=True)
class Order:
    """A respondent's order resolved against the catalogue served now.

    ``pages`` are the catalogue's pages in the respondent's order, each with its practices
    in the respondent's order; a page keeps its catalogue ``number`` (its URL).
    """

    pages: tuple[Page, ...]
    first_kind: str

    def position(self, number: int) -> int | None:
        """1-based position of the catalogue page ``number`` in this order."""
        for i, page in enumerate(self.pages, 1):
            if page.number == number:
                return i
        return None

    def kinds(self, kinds: tuple[str, ...]) -> tuple[str, ...]:
        """Company kinds in the order their columns are shown."""
        return tuple(sorted(kinds, key=lambda k: k != self.first_kind))


def resolve(cat: Catalog, stored: dict | None) -> Order:
    """The order a response was given, over the catalogue served now.

    Pages and practices the stored order does not know (a newer catalogue) follow in
    catalogue order; those the catalogue no longer has are left out.
    """
    stored = stored if isinstance(stored, dict) else {}
    keys = [k for k in stored.get("pages") or [] if k in cat.pages_by_key]
    keys += [page.key for page in cat.pages if page.key not in keys]
    within = stored.get("practices") or {}
    pages = []
    for key in keys:
        page = cat.pages_by_key[key]
        rank = {pid: i for i, pid in enumerate(within.get(key) or [])}
        ordered = sorted(page.practices, key=lambda p: rank.get(p.id, len(rank)))
        pages.append(Page(page.number, page.category, tuple(ordered), page.key))
    first = stored.get("first_kind")
    return Order(tuple(pages), first if first in COMPANY_KINDS else COMPANY_KINDS[0])


def answer_positions(cat: Catalog, stored: dict | None) -> dict[str, tuple[int, int]]:
    """Practice id -> (page position, position within the page), both 1-based."""
    return positions(cat, stored)[2]


def positions(
    cat: Catalog, stored: dict | None
) -> tuple[str, dict[str, int], dict[str, tuple[int, int]]]:
    """What :func:`resolve` says about positions, without building the order: the kind shown
    first, page key -> position, and practice id -> (page position, position within the
    page), all 1-based."""
    return Positions(cat)(stored)


class Positions:
    """:func:`positions` for many responses over one catalogue (the export works them out
    for every response: the catalogue's pages are indexed once)."""

    def __init__(self, cat: Catalog):
        self.keys = [page.key for page in cat.pages]
        # Each page's practice ids in catalogue order (a dict: ordered, and a set).
        self.ids = {page.key: dict.fromkeys(p.id for p in page.practices) for page in cat.pages}

    def __call__(self, stored: dict | None) -> tuple[str, dict[str, int], dict]:
        """The positions of one response's stored order, as :func:`positions` returns them."""
        stored = stored if isinstance(stored, dict) else {}
        keys = [k for k in stored.get("pages") or [] if k in self.ids]
        keys += [key for key in self.keys if key not in keys]
        within = stored.get("practices") or {}
        at: dict[str, tuple[int, int]] = {}
        for page_at, key in enumerate(keys, 1):
            ids = self.ids[key]
            listed = within.get(key) or []
            seen = set(listed)
            if len(seen) == len(listed):  # as resolve sorts them, without the sort
                ordered = [pid for pid in listed if pid in ids]
                ordered += [pid for pid in ids if pid not in seen]
            else:
                rank = {pid: i for i, pid in enumerate(listed)}
                ordered = sorted(ids, key=lambda pid: rank.get(pid, len(rank)))
            for item_at, pid in enumerate(ordered, 1):
                at[pid] = (page_at, item_at)
        first = stored.get("first_kind")
        first = first if first in COMPANY_KINDS else COMPANY_KINDS[0]
        return first, {key: i for i, key in enumerate(keys, 1)}, at


# -- indicators (pure) ---------------------------------------------------------------------
def straightlined(cells: list[tuple]) -> bool:
    """Whether a page's answers for one kind are all identical (each a tuple of stored
    values, e.g. ``(met, rating, rating_mixed)``)."""
    return len(cells) >= STRAIGHTLINE_MIN_ITEMS and len(set(cells)) == 1


def page_straightlining(page: Page, answers: dict, kinds: tuple[str, ...]) -> bool:
    """Straightlining on a page: for some kind, every practice got the identical answer.

    ``answers`` maps (practice id, kind) -> (met, rating, rating_mixed), as stored; a
    missing answer counts as ``(None, None, False)``.
    """
    return any(
        straightlined([answers.get((p.id, kind), (None, None, False)) for p in page.practices])
        for kind in kinds
    )


def is_speeding(seconds: int | None, median: float | None) -> bool | None:
    """Below :data:`SPEEDING_FRACTION` of the page's median; None when either is unknown."""
    if seconds is None or median is None:
        return None
    return seconds < SPEEDING_FRACTION * median


def is_low_quality(claimed: bool, straightlined_pages: int, speeding_pages: int, pages: int):
    """The "exclude low quality" rule (see the module docstring)."""
    return bool(claimed) or 2 * straightlined_pages >= pages or 2 * speeding_pages >= pages


@dataclass(frozen=True)
class Assessment:
    """A response's quality indicators."""

    pages: dict[str, tuple[bool, bool | None]]  # page key -> (straightlining, speeding)
    fictitious_claimed: bool
    straightlined_pages: int
    speeding_pages: int
    low_quality: bool

    def columns(self) -> dict:
        """The values of the response's indicator columns."""
        return {
            "fictitious_claimed": self.fictitious_claimed,
            "straightlined_pages": self.straightlined_pages,
            "speeding_pages": self.speeding_pages,
            "low_quality": self.low_quality,
        }


# -- indicators over the database ----------------------------------------------------------
def _cached(name: str, compute):
    cache = current_app.extensions.setdefault("survey_paradata_cache", {})
    hit = cache.get(name)
    if hit and hit[0] > time.monotonic():
        return hit[1]
    value = compute()
    cache[name] = (time.monotonic() + CACHE_SECONDS, value)
    return value


def clear_cache() -> None:
    """Forget the cached medians and estimate (tests; after bulk changes)."""
    current_app.extensions.pop("survey_paradata_cache", None)


def _recent_real():
    """Ids of the most recent submitted real, unflagged responses (at most RECENT)."""
    return (
        select(Response.id)
        .where(
            Response.status == "submitted",
            Response.is_demo.is_(False),
            Response.quality_flag.is_(None),
        )
        .order_by(Response.id.desc())
        .limit(RECENT)
        .subquery()
    )


def page_medians() -> dict[str, float]:
    """Median seconds per page key over recent submitted real responses, for pages with at
    least :data:`MEDIAN_MIN_SAMPLE` timed responses (cached for a few minutes)."""

    def compute():
        recent = _recent_real()
        rows = db.session.execute(
            select(ResponsePage.page, ResponsePage.seconds).where(
                ResponsePage.response_id.in_(select(recent.c.id)),
                ResponsePage.seconds.is_not(None),
            )
        ).all()
        by_page: dict[str, list[int]] = {}
        for page, seconds in rows:
            by_page.setdefault(page, []).append(seconds)
        return {
            page: float(statistics.median(values))
            for page, values in by_page.items()
            if len(values) >= MEDIAN_MIN_SAMPLE
        }

    return _cached("page_medians", compute)


def estimated_minutes(fallback: int) -> int:
    """Minutes the landing page announces: the median ``active_seconds`` of recent submitted
    real responses, rounded up, once there are :data:`ESTIMATE_MIN_SAMPLE` of them; until
    then ``fallback``. Cached for a few minutes per worker."""

    def compute():
        recent = _recent_real()
        seconds = db.session.scalars(
            select(Response.active_seconds).where(
                Response.id.in_(select(recent.c.id)), Response.active_seconds > 0
            )
        ).all()
        if len(seconds) < ESTIMATE_MIN_SAMPLE:
            return None
        return max(1, math.ceil(statistics.median(seconds) / 60))

    try:
        measured = _cached("estimate", compute)
    except SQLAlchemyError as exc:  # the landing page must not fail for a cosmetic number
        db.session.rollback()
        current_app.logger.warning("completion estimate unavailable: %s", exc)
        return fallback
    return fallback if measured is None else measured


def assess(cat: Catalog, response: Response, medians: dict[str, float] | None = None):
    """The quality indicators of a response, from its stored answers and page seconds."""
    medians = page_medians() if medians is None else medians
    answers = {
        (a.practice_id, a.company_kind): (a.met, a.rating, bool(a.rating_mixed))
        for model in (Answer, FictitiousAnswer)
        for a in db.session.scalars(select(model).filter_by(response_id=response.id))
    }
    seconds = dict(
        db.session.execute(
            select(ResponsePage.page, ResponsePage.seconds).filter_by(response_id=response.id)
        ).all()
    )
    kinds = response.kinds()
    pages = {
        page.key: (
            page_straightlining(page, answers, kinds),
            is_speeding(seconds.get(page.key), medians.get(page.key)),
        )
        for page in cat.pages
    }
    claimed = any(
        answers.get((p.id, kind), ("",))[0] in EXISTED for p in cat.fictitious for kind in kinds
    )
    flat = sum(1 for s, _ in pages.values() if s)
    fast = sum(1 for _, f in pages.values() if f)
    return Assessment(
        pages=pages,
        fictitious_claimed=claimed,
        straightlined_pages=flat,
        speeding_pages=fast,
        low_quality=is_low_quality(claimed, flat, fast, len(cat.pages)),
    )


def store_page_flags(response_id: int, assessment: Assessment) -> None:
    """Write the per-page indicators (the response's own columns are written by the caller;
    a page without a row yet gets one with unknown seconds)."""
    known = set(db.session.scalars(select(ResponsePage.page).filter_by(response_id=response_id)))
    for key, (flat, fast) in assessment.pages.items():
        if key in known:
            db.session.execute(
                update(ResponsePage)
                .where(ResponsePage.response_id == response_id, ResponsePage.page == key)
                .values(straightlining=flat, speeding=fast)
            )
        else:
            db.session.add(
                ResponsePage(response_id=response_id, page=key, straightlining=flat, speeding=fast)
            )


def recompute_all(cat: Catalog, chunk: int = 500) -> int:
    """Recompute the indicators of every submitted real response with today's page medians;
    return how many. Demo rows stay unassessed (NULL)."""
    clear_cache()
    medians = page_medians()
    done, last = 0, 0
    while True:
        batch = db.session.scalars(
            select(Response)
            .where(Response.status == "submitted", Response.is_demo.is_(False), Response.id > last)
            .order_by(Response.id)
            .limit(chunk)
        ).all()
        if not batch:
            break
        for response in batch:
            found = assess(cat, response, medians)
            db.session.execute(
                update(Response).where(Response.id == response.id).values(**found.columns())
            )
            store_page_flags(response.id, found)
            done += 1
        last = batch[-1].id
        db.session.commit()
    clear_cache()
    return done
