"""Synthetic demo respondents: realistic structure, reproducible from a seed, bulk-inserted.

Every row written here has ``is_demo = TRUE``. Nothing here is real data, and every page,
report and file that shows it says so.
"""

from __future__ import annotations

import datetime as dt
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from itertools import repeat

import numpy as np
from sqlalchemy import func, select

from survey import fieldwork
from survey.catalog import Catalog
from survey.extensions import db
from survey.models import COMPANY_KINDS, Answer, Response
from survey.questions import (
    BACKGROUND_BY_FIELD,
    FUNCTION_OPTIONS,
    KIND_FIELDS,
    ROLE_OPTIONS,
    kind_field,
)
from survey.responses import catalog_version_id, default_wave, layout
from survey.vectors import decode_cell

DEMO_CONSENT = "demo"  # synthetic rows consented to nothing: their consent_version says so
WORKED_IN = (("ru_only", 0.35), ("foreign_only", 0.2), ("both", 0.45))
# Skewed background shares, as a real sample of office workers would be (not uniform), so
# the demo study is exportable under k-anonymity like a real one of the same size.
BACKGROUND_WEIGHTS = {
    "current_employer": {"ru": 0.5, "foreign": 0.3, "self": 0.1, "not_working": 0.1},
    "industry": {
        "it": 0.22,
        "finance": 0.15,
        "manufacturing": 0.1,
        "retail": 0.08,
        "fmcg": 0.08,
        "energy": 0.07,
        "consulting": 0.1,
        "pharma": 0.06,
        "logistics": 0.05,
        "public": 0.05,
        "other": 0.04,
    },
    "company_size": {
        "lt50": 0.12,
        "50_249": 0.18,
        "250_999": 0.22,
        "1000_4999": 0.23,
        "5000plus": 0.25,
    },
    "role_level": {
        "specialist": 0.45,
        "line_manager": 0.25,
        "middle_manager": 0.2,
        "executive": 0.1,
    },
    "job_function": {
        "sales": 0.22,
        "hr": 0.08,
        "it": 0.24,
        "finance": 0.14,
        "operations": 0.17,
        "other": 0.15,
    },
    "experience_band": {"lt3": 0.08, "3_5": 0.17, "6_10": 0.3, "11_20": 0.3, "20plus": 0.15},
    "region": {"moscow": 0.55, "spb": 0.2, "other_ru": 0.18, "abroad": 0.07},
}
DK_SHARE = 0.06
# Within-person correlation between a respondent's answers about the two kinds (phi of the
# existed / did not exist answers to one practice; latent correlation of the ratings), for
# respondents who worked in both. Strong enough that a test treating the two kinds as
# independent samples visibly disagrees with the partially overlapping samples test
# (issue 13).
DEFAULT_CORRELATION = 0.6

# Each kind's block (survey/questions.py KIND_BACKGROUND) is drawn from the general
# background, so that the two agree as a real respondent's would: the function held there
# is mostly the function now; the highest role there is at most the role now (mostly the
# role now in the kind of the current employer); the years there come from the total
# experience (split between the kinds for those who worked in both); the kind of the
# current employer was worked in lately (2022 on); the number of employers grows with the
# years.
SAME_FUNCTION = 0.8
# Total years of experience within each experience band (drawn uniformly).
EXPERIENCE_YEARS = {
    "lt3": (0.3, 3.0),
    "3_5": (3.0, 6.0),
    "6_10": (6.0, 11.0),
    "11_20": (11.0, 21.0),
    "20plus": (21.0, 35.0),
}
# Upper bounds (exclusive) of the years bands lt1, 1_2, 3_5, 6_10; anything above: 10plus.
YEARS_BOUNDS = (1.0, 3.0, 6.0, 11.0)
YEARS_CODES = ("lt1", "1_2", "3_5", "6_10", "10plus")
# P(1, 2_3, 4plus employers of the kind) by the years band there.
EMPLOYERS = {
    "lt1": (0.9, 0.1, 0.0),
    "1_2": (0.7, 0.28, 0.02),
    "3_5": (0.5, 0.42, 0.08),
    "6_10": (0.35, 0.45, 0.2),
    "10plus": (0.25, 0.45, 0.3),
}
EMPLOYER_CODES = ("1", "2_3", "4plus")
# How many levels below the role now the highest role in a kind not worked in now lies.
ROLE_DROP = (0.55, 0.35, 0.1)
PERIOD_STARTS = (("2022_on", 2022), ("2014_2021", 2014))  # else before_2014
# The demo's present for the periods (late 2026, when the blocks were first asked): fixed,
# so that a seed gives the same periods whatever the date it runs on.
PERIOD_NOW = 2026.9

# The answer scale. Of the answers saying a practice existed, the share "applied to me"
# (per practice, uniform in APPLIED_SHARE). A practice the catalogue marks with
# ``functions`` mostly applied to whoever held one of those functions in that kind; the
# others answer "not applicable to my role" (NOT_MY_ROLE_SHARE) or answer the scale, and
# then it rarely applied to them.
APPLIED_SHARE = (0.55, 0.85)
APPLIED_IN_FUNCTION = 0.85
APPLIED_OUTSIDE_FUNCTION = 0.1
NOT_MY_ROLE_SHARE = 0.5
# Of the answers "applied": "mixed / can't say" instead of a rating, and no rating at all.
MIXED_SHARE = 0.07
UNRATED_SHARE = 0.03
# A SYNTHETIC period effect, not a finding: every eighth practice (pattern 3 of
# practice_parameters) is this much more common, in both kinds, in the answers about a
# kind last worked in in 2022 or later, so that the period filter and split have
# something to show on demo data.
PERIOD_SHIFT = 0.12


def practice_parameters(cat: Catalog, rng: np.random.Generator) -> dict[str, dict]:
    """Per practice: base prevalence in each kind and mean rating in each kind.

    About a quarter of the practices get the same prevalence in both kinds (no
    difference at all); the others are more common in foreign companies, some strongly,
    and a few are more common in Russian companies.

    Also per practice: the share "applied to me" among the answers saying it existed
    (``applied``), the job functions it exists for (``functions``, from the catalogue),
    and the SYNTHETIC rise of its prevalence, in either kind, among answers about 2022 or
    later (``period_shift``: added to ``p``; non-zero for every eighth practice only).
    """
    params = {}
    for i, practice in enumerate(cat.practices):
        base = float(rng.uniform(0.12, 0.65))
        pattern = i % 8
        if pattern in (0, 4):
            ru, foreign = base, base
        elif pattern == 7:
            ru, foreign = min(base + 0.15, 0.9), base
        else:
            ru, foreign = base, min(base + float(rng.uniform(0.08, 0.3)), 0.92)
        centre = float(rng.uniform(3.0, 4.3))
        params[practice.id] = {
            "p": {"ru": ru, "foreign": foreign},
            "rating": {"ru": centre - (0.4 if pattern in (1, 5) else 0.0), "foreign": centre},
            "applied": float(rng.uniform(*APPLIED_SHARE)),
            "functions": tuple(practice.functions),
            "period_shift": PERIOD_SHIFT if pattern == 3 else 0.0,
        }
    return params


def _ratings(centre: float, latent: np.ndarray) -> np.ndarray:
    """Ratings 1-5 around ``centre`` from standard normal ``latent`` scores."""
    return np.clip(np.rint(centre + 0.9 * latent), 1, 5).astype(int)


def both_yes_share(p_ru, p_foreign, correlation: float):
    """P(existed in both kinds) for answers with these shares of "existed" and this phi.

    Clipped to what the two shares allow (the Frechet bounds): two shares far apart
    cannot be correlated with phi near 1, nor near -1. Takes numbers or arrays (one
    pair of shares per respondent) and returns the same.
    """
    p_ru, p_foreign = np.asarray(p_ru, float), np.asarray(p_foreign, float)
    spread = np.sqrt(p_ru * (1 - p_ru) * p_foreign * (1 - p_foreign))
    share = np.clip(
        p_ru * p_foreign + correlation * spread,
        np.maximum(0.0, p_ru + p_foreign - 1),
        np.minimum(p_ru, p_foreign),
    )
    return float(share) if share.ndim == 0 else share


def _paired_yes(u: np.ndarray, p_ru, p_foreign, correlation: float):
    """Existed in Russian, existed in foreign companies, from one uniform draw per person.

    The unit interval is cut so that ``[0, p_ru)`` is "existed" in Russian companies and
    ``[0, p11) + [p_ru, p_ru + p_foreign - p11)`` in foreign ones: each share is exact,
    and both is ``p11`` (:func:`both_yes_share`). The shares may differ by person.
    """
    p11 = both_yes_share(p_ru, p_foreign, correlation)
    ru = u < p_ru
    foreign = (u < p11) | ((u >= p_ru) & (u < p_ru + p_foreign - p11))
    return ru, foreign


# One character per answer cell, in the alphabet of the answer vector (survey/vectors.py),
# which is stored as the response's answer_code and from which the answer rows are made:
# "a" not applicable (kind not worked in), "n" no, "d" don't know, "r" not my role, "e"
# existed but not for me; applied: "1".."5" with that rating, "m" rated "mixed / can't
# say", "p" without a rating.
_NA, _NO, _DK, _NOT_MINE, _EXISTED = (ord(c) for c in "andre")
_MIXED, _UNRATED = ord("m"), ord("p")
_DEMO_CELLS = "andre12345mp"

# SQLite: the page cache of the seeding connection (KiB; the application's connections
# keep their 32 MiB). A chunk of 10,000 respondents adds about 90 MB of pages: with room
# for all of them none is spilled to the log before the chunk commits (and written again
# when touched after), which made the answer rows 15 % slower to insert.
SQLITE_CACHE_KIB = 128 * 1024
# SQLite: at most this many chunks in the write-ahead log (see _Checkpoints).
CHECKPOINT_EVERY = 4
# PostgreSQL: respondents per block of answer rows handed to COPY (about 5 MB of text).
COPY_BLOCK = 1000


def seed_demo(
    cat: Catalog,
    n: int,
    seed: int,
    *,
    chunk: int = 10000,
    progress: Callable[[int], None] | None = None,
    correlation: float = DEFAULT_CORRELATION,
) -> int:
    """Insert ``n`` synthetic submitted responses with all their answers; return n.

    ``correlation`` (-1 to 1) ties the two answers of a respondent who worked in both kinds
    of company: it is the phi correlation of their existed / did not exist answers about
    one practice (clipped per practice to what its two prevalences allow, see
    :func:`both_yes_share`) and the correlation of the normal scores behind their two
    ratings (the rounded 1-5 ratings correlate a little less). Everything else is drawn
    independently: answers to different practices, don't-know (``DK_SHARE`` per answer),
    "applied" or "existed, but not for me", "not my role", "mixed / can't say", and the
    background, apart from the ties between the background and each kind's block
    described at ``SAME_FUNCTION``.

    The respondents answer the scale asked since 2026-12 (applied / existed / no / don't
    know, "not applicable to my role" on practices marked with ``functions``) and carry
    each kind's block; none looks like a response from before 2026-12. The numbers follow
    the seed (and ``chunk``: each chunk draws its respondents in turn); the export ids are
    random.

    Python draws the answers with numpy, a chunk of respondents at a time, and writes each
    respondent's answers as one code string in the alphabet and layout of
    :mod:`survey.vectors` (the real practices of the served catalogue version, in its
    snapshot's order, times the two kinds): it is stored as the response's
    ``answer_code``, and the answer rows, which stay the source of truth, are made from it
    in the same transaction, in the order of the answer table's unique index (response,
    practice, kind), so that every index entry is appended at the end of its index. The
    next chunk is drawn in a second thread while the database writes the current one
    (:class:`_Ahead`). How each database is written (issue 14; the figures are in the
    README):

    - SQLite: one transaction per chunk. The response rows go in with ``executemany`` on
      the driver's connection; the answer rows are made by SQLite itself (``INSERT ...
      SELECT`` over the chunk's responses and the catalogue's cells, :data:`_EXPAND_SQL`),
      with no Python object per answer. The seeding connection skips the per-row CHECK and
      FOREIGN KEY evaluation (every row is valid by construction, the tests check the
      stored rows against every constraint, and the connection is discarded afterwards) and
      has a larger page cache; the write-ahead log is copied into the database file by a
      second connection in a second thread (:class:`_Checkpoints`). The ``data_version``
      row trigger on ``response`` (one UPDATE per seeded response) is dropped and created
      again from its stored SQL within the chunk's transaction, which bumps the version
      once itself: no other connection can see the database without the trigger (readers
      see the last commit, writers wait for the write lock), and a failure rolls the drop
      back with the rest.
    - PostgreSQL: one transaction for the whole seeding, which, as the manual advises for
      bulk loads ("Populating a Database"), drops the answer table's foreign keys and adds
      them back at the end, when one join validates every row at once instead of two
      trigger calls per row. Responses and answers are loaded with COPY (PostgreSQL's
      fastest path for a bulk load, ahead of ``INSERT ... SELECT``). The answer rows'
      COPY text is assembled with numpy from per-cell templates (:class:`_AnswerCopy`),
      with their ids from one block reserved on the table's sequence (not a ``nextval``
      per row). The transaction holds an exclusive lock on the answer table until it
      commits: seed a study before fieldwork, not during it. An interrupted seeding leaves
      nothing behind; ``data_version`` is bumped by its statement trigger on ``response``.
    """
    if not -1.0 <= correlation <= 1.0:
        raise ValueError(f"correlation must lie in [-1, 1], got {correlation!r}")
    rng = np.random.default_rng(seed)
    params = practice_parameters(cat, rng)
    wave = default_wave()
    wave_id, channel_id = wave.id, fieldwork.direct_channel(wave).id
    version_id = catalog_version_id()
    start_id = (db.session.scalar(select(func.max(Response.id))) or 0) + 1
    db.session.commit()  # no transaction of ours may hold a lock the seeding waits for
    practices = [p.id for p in cat.practices]
    if tuple(practices) != layout(version_id):
        raise ValueError("the catalogue to seed is not the one this application serves")
    first_day = fieldwork.today() - dt.timedelta(days=45)
    dates = [(first_day + dt.timedelta(days=d)).isoformat() for d in range(45)]
    chunks = (
        _chunk(rng, np.arange(first, min(first + chunk, start_id + n)), params, practices,
               (wave_id, channel_id, version_id, dates), correlation)
        for first in range(start_id, start_id + n, chunk)
    )  # fmt: skip
    with db.engine.connect() as connection:
        load = _load_sqlite if connection.dialect.name == "sqlite" else _load_postgresql
        raw = connection.connection.driver_connection
        try:
            # Closed at once if the caller stops: its threads end, its transaction is left.
            with closing(load(raw, practices, _Ahead(chunks))) as loading:
                for size in loading:
                    if progress:
                        progress(size)
        finally:
            # Closed, never back to the pool: its settings are changed, its temporary table
            # goes with it, and an unfinished transaction is rolled back.
            connection.invalidate()
    return n


class _Ahead:
    """The chunks, each drawn in a second thread while the one before is written.

    A loader calls :meth:`prefetch` just before it waits on the database (SQLite inside one
    long statement, PostgreSQL in its own process: neither holds Python's lock), so that
    the next chunk is drawn meanwhile on the other core, not while the loader itself needs
    Python (binding the response rows). One draw at a time, in order: the numbers stay
    the seed's.
    """

    def __init__(self, items: Iterator):
        self.items = items
        self.worker = ThreadPoolExecutor(max_workers=1)
        self.pending = None

    def prefetch(self) -> None:
        """Start drawing the next chunk, unless it is already on its way."""
        if self.pending is None:
            self.pending = self.worker.submit(next, self.items, None)

    def __iter__(self):
        try:
            while True:
                self.prefetch()
                item, self.pending = self.pending.result(), None
                if item is None:
                    return
                yield item
        finally:
            self.worker.shutdown(wait=True)


_RESPONSE_COLUMNS = (
    "id", "export_id", "resume_token_hash", "status", "wave_id", "channel_id",
    "catalog_version_id", "language", "is_demo", "consent_version", "consented_on",
    "started_on", "updated_on", "submitted_on", "last_page", "worked_in", "answer_code",
)  # fmt: skip
_BACKGROUND_COLUMNS = tuple(name for name in BACKGROUND_BY_FIELD if name != "worked_in")
_KIND_COLUMNS = tuple(kind_field(kind, name) for kind in COMPANY_KINDS for name in KIND_FIELDS)
_COLUMNS = (*_RESPONSE_COLUMNS, *_BACKGROUND_COLUMNS, *_KIND_COLUMNS)


def _weighted(rng, codes, weights, size) -> np.ndarray:
    """``size`` codes drawn with the given weights (a dict by code)."""
    return rng.choice(codes, size=size, p=[weights[c] for c in codes])


def _kind_blocks(rng, worked, background) -> dict[str, np.ndarray]:
    """Each kind's block for one chunk: ``<kind>_<name>`` -> object array, None where the
    kind was not worked in (see SAME_FUNCTION for how it follows the background)."""
    size = len(worked)
    employer = background["current_employer"]
    band = background["experience_band"]
    low = np.array([EXPERIENCE_YEARS[b][0] for b in band.tolist()])
    high = np.array([EXPERIENCE_YEARS[b][1] for b in band.tolist()])
    total = low + (high - low) * rng.random(size)
    # Years in each kind: nearly all of it for one kind, a split for both.
    share = rng.beta(2.0, 2.0, size)
    single = 0.8 + 0.2 * rng.random(size)
    years = {
        "ru": total * np.where(worked == "both", share, single),
        "foreign": total * np.where(worked == "both", 1.0 - share, single),
    }
    # Years since last worked in each kind: none for the current employer's kind; for those
    # in both kinds, the other one ended while they were at the current one (or, if neither
    # is current, one ended lately and the other before it).
    recent = np.where(rng.random(size) < 0.5, *COMPANY_KINDS)
    ago = {}
    for kind, other in zip(COMPANY_KINDS, COMPANY_KINDS[::-1], strict=True):
        alone = rng.random(size) * (np.maximum(total - years[kind], 0.0) + 1.5)
        # Mostly when the years in the current kind began (some went back and forth).
        during_other = rng.beta(4.0, 1.0, size) * years[other]
        lately = rng.random(size) * 3.0
        ago[kind] = np.where(
            employer == kind,
            0.0,
            np.where(
                worked != "both",
                alone,
                np.where(np.isin(employer, COMPANY_KINDS), during_other, lately),
            ),
        )
    for kind, other in zip(COMPANY_KINDS, COMPANY_KINDS[::-1], strict=True):
        neither = (worked == "both") & ~np.isin(employer, COMPANY_KINDS)
        earlier = ago[other] + rng.random(size) * years[other]
        ago[kind] = np.where(neither & (recent == other), earlier, ago[kind])
    functions = [o.code for o in FUNCTION_OPTIONS]
    roles = [o.code for o in ROLE_OPTIONS]
    role_now = np.array([roles.index(r) for r in background["role_level"].tolist()])
    blocks = {}
    for kind in COMPANY_KINDS:
        works = worked != {"ru": "foreign_only", "foreign": "ru_only"}[kind]
        band_of = np.searchsorted(YEARS_BOUNDS, years[kind], side="right")
        years_code = np.array(YEARS_CODES)[band_of]
        last = PERIOD_NOW - ago[kind]
        period = np.full(size, "before_2014", dtype=object)
        for code, start in reversed(PERIOD_STARTS):
            period[last >= start] = code
        cumulative = np.cumsum([EMPLOYERS[c] for c in YEARS_CODES], axis=1)[band_of]
        draw = rng.random(size)[:, None]
        employers = np.array(EMPLOYER_CODES)[np.minimum((draw >= cumulative).sum(axis=1), 2)]
        drop = rng.choice(len(ROLE_DROP), size=size, p=ROLE_DROP)
        drop = np.where(employer == kind, (rng.random(size) < 0.1).astype(int), drop)
        role = np.array(roles)[np.maximum(role_now - drop, 0)]
        other_function = _weighted(rng, functions, BACKGROUND_WEIGHTS["job_function"], size)
        same = rng.random(size) < SAME_FUNCTION
        function = np.where(same, background["job_function"], other_function)
        values = {
            "years": years_code,
            "last_year": period,
            "employers": employers,
            "role_level": role,
            "function": function,
        }
        for name in KIND_FIELDS:
            blocks[kind_field(kind, name)] = np.where(works, values[name].astype(object), None)
    return blocks


def _chunk(rng, ids, params, practices, study, correlation):
    """Draw one chunk: ``(ids, response rows, cells)``: the response rows as tuples in the
    order of :data:`_COLUMNS`, each with its answer vector, and the same vectors as a
    (respondents x cells) uint8 matrix of their characters.

    ``study`` is (wave id, channel id, catalogue version id, the 45 dates the responses are spread
    over). Nothing here needs the application or the database: it runs in a second thread.
    """
    wave_id, channel_id, version_id, day_of = study
    size = len(ids)
    codes = {name: q.codes() for name, q in BACKGROUND_BY_FIELD.items()}
    worked = rng.choice([w for w, _ in WORKED_IN], size=size, p=[p for _, p in WORKED_IN])
    background = {}
    for name in codes:
        weights = BACKGROUND_WEIGHTS.get(name)
        p = [weights[c] for c in codes[name]] if weights else None
        background[name] = rng.choice(codes[name], size=size, p=p)
    # Nobody who only worked in Russian companies works in a foreign one now, and vice versa.
    employer = background["current_employer"]
    employer[(worked == "ru_only") & (employer == "foreign")] = "ru"
    employer[(worked == "foreign_only") & (employer == "ru")] = "foreign"
    blocks = _kind_blocks(rng, worked, background)
    background["region"] = np.where(rng.random(size) < 0.2, None, background["region"])
    days = rng.integers(0, 45, size=size)
    lang = np.where(rng.random(size) < 0.8, "ru", "en")
    # Answer codes, one column per (practice, kind) in the layout of survey.vectors.
    cells = np.empty((size, 2 * len(practices)), dtype=np.uint8)
    asks = {"ru": worked != "foreign_only", "foreign": worked != "ru_only"}
    since_2022 = {kind: blocks[kind_field(kind, "last_year")] == "2022_on" for kind in asks}
    function = {kind: blocks[kind_field(kind, "function")] for kind in asks}
    # Both kinds are drawn jointly for everyone; a one-kind respondent keeps one of them,
    # whose distribution is the kind's own, so the correlation only shows in the pairs.
    mix = np.sqrt(1.0 - correlation**2)
    for i, pid in enumerate(practices):
        par = params[pid]
        shift = par["period_shift"]
        p = {kind: np.minimum(par["p"][kind] + shift * since_2022[kind], 0.95) for kind in asks}
        existed_ru, existed_foreign = _paired_yes(
            rng.random(size), p["ru"], p["foreign"], correlation
        )
        existed = {"ru": existed_ru, "foreign": existed_foreign}
        latent_ru = rng.standard_normal(size)
        latent = {
            "ru": latent_ru,
            "foreign": correlation * latent_ru + mix * rng.standard_normal(size),
        }
        # Whoever says "not my role" about a practice says it about every kind in which
        # they held another function: one draw per person.
        says_not_mine = rng.random(size) < NOT_MY_ROLE_SHARE
        for k, kind in enumerate(COMPANY_KINDS):
            is_dk = rng.random(size) < DK_SHARE
            if par["functions"]:
                mine = np.zeros(size, dtype=bool)
                for code in par["functions"]:
                    mine |= function[kind] == code
                not_mine = ~mine & says_not_mine
                applied_share = np.where(mine, APPLIED_IN_FUNCTION, APPLIED_OUTSIDE_FUNCTION)
            else:
                not_mine = np.zeros(size, dtype=bool)
                applied_share = par["applied"]
            applied = rng.random(size) < applied_share
            how = rng.random(size)
            rating = np.where(
                how < MIXED_SHARE,
                _MIXED,
                np.where(
                    how < MIXED_SHARE + UNRATED_SHARE,
                    _UNRATED,
                    _ratings(par["rating"][kind], latent[kind]) + ord("0"),
                ),
            )
            column = np.where(existed[kind], np.where(applied, rating, _EXISTED), _NO)
            column = np.where(not_mine, _NOT_MINE, np.where(is_dk, _DK, column))
            cells[:, 2 * i + k] = np.where(asks[kind], column, _NA)
    strings = np.char.decode(cells.view(f"S{cells.shape[1]}").ravel(), "ascii").tolist()
    # The rows are zipped from columns (constants repeated): no Python work per value. The
    # export ids have the form of models.new_export_id (8 random bytes in hex), drawn at once.
    random_hex = secrets.token_hex(8 * size)
    dates = np.array(day_of)[days].tolist()
    columns = {
        "id": ids.tolist(),
        "export_id": [random_hex[i : i + 16] for i in range(0, 16 * size, 16)],
        "resume_token_hash": repeat(None),
        "status": repeat("submitted"),
        "wave_id": repeat(wave_id),
        "channel_id": repeat(channel_id),
        "catalog_version_id": repeat(version_id),
        "language": lang.tolist(),
        "is_demo": repeat(True),
        "consent_version": repeat(DEMO_CONSENT),
        "consented_on": dates,
        "started_on": dates,
        "updated_on": dates,
        "submitted_on": dates,
        "last_page": repeat(99),
        "worked_in": worked.tolist(),
        "answer_code": strings,
        **{name: background[name].tolist() for name in _BACKGROUND_COLUMNS},
        **{name: blocks[name].tolist() for name in _KIND_COLUMNS},
    }
    responses = list(zip(*(columns[name] for name in _COLUMNS), strict=False))  # repeat()s
    return ids, responses, cells


def _index_order(practices: list[str]) -> list[tuple[int, str, str]]:
    """The cells ``(position in the vector, practice id, kind)`` in the order of the answer
    table's unique index (response, practice, kind) under byte-wise (C) collation. Under
    another collation the rows are the same, only some index entries land mid-page."""
    cells = [
        (2 * i + k, pid, kind)
        for i, pid in enumerate(practices)
        for k, kind in enumerate(COMPANY_KINDS)
    ]
    return sorted(cells, key=lambda cell: (cell[1].encode(), cell[2].encode()))


# SQLite makes each chunk's answer rows from its responses' answer codes and the
# catalogue's cells (the temporary table demo_cell, in index order). Each cell's character
# is taken from the code as a BLOB (X'6E' is "n"): substr() of TEXT counts characters from
# the start of the string, of a BLOB it indexes bytes, and this expression is evaluated
# thrice per row (as TEXT, a quarter of the statement's time). The CASE expressions can
# only yield valid codes, a rating or "mixed" only with "applied", and never both.
_EXPAND_SQL = """
INSERT INTO answer (response_id, practice_id, company_kind, met, rating, rating_mixed)
SELECT id, practice_id, company_kind,
       CASE ch WHEN X'61' THEN 'na' WHEN X'6E' THEN 'no' WHEN X'65' THEN 'existed'
               WHEN X'64' THEN 'dk' WHEN X'72' THEN 'not_my_role' ELSE 'applied' END,
       nullif(instr(X'3132333435', ch), 0),
       ch = X'6D'
FROM (SELECT r.id, cell.practice_id, cell.company_kind,
             substr(CAST(r.answer_code AS BLOB), cell.pos, 1) AS ch
      FROM response r CROSS JOIN demo_cell cell
      WHERE r.id BETWEEN ? AND ?) AS expanded
"""
# The trigger that bumps data_version for every submitted response inserted (migration
# 0010), and what it does.
_VERSION_TRIGGER = "data_version_insert"
_BUMP_VERSION = "UPDATE data_version SET version = version + 1 WHERE id = 1"


def _load_sqlite(raw, practices: list[str], chunks: _Ahead) -> Iterator[int]:
    """Write the chunks through the sqlite3 connection ``raw``, one transaction each; yield
    each chunk's size once it is committed."""
    raw.execute("PRAGMA foreign_keys=OFF")
    raw.execute("PRAGMA ignore_check_constraints=ON")
    raw.execute(f"PRAGMA cache_size=-{int(SQLITE_CACHE_KIB)}")
    # The cells in index order (``rank``, the order in which the cross join reads them).
    raw.execute(
        "CREATE TEMPORARY TABLE demo_cell (rank INTEGER PRIMARY KEY, pos INTEGER NOT NULL, "
        "practice_id VARCHAR(64) NOT NULL, company_kind VARCHAR(8) NOT NULL)"
    )
    raw.executemany(
        "INSERT INTO demo_cell (pos, practice_id, company_kind) VALUES (?, ?, ?)",
        [(pos + 1, pid, kind) for pos, pid, kind in _index_order(practices)],
    )
    raw.commit()
    trigger = raw.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?", (_VERSION_TRIGGER,)
    ).fetchone()
    marks = ", ".join("?" * len(_COLUMNS))
    # Column names are this module's constants, never input.
    insert = f"INSERT INTO response ({', '.join(_COLUMNS)}) VALUES ({marks})"  # noqa: S608
    with _Checkpoints(raw) as checkpoints:
        for number, (ids, responses, _) in enumerate(chunks):
            if number % CHECKPOINT_EVERY == 0:
                checkpoints.wait()  # all copied: this chunk starts the log afresh
            raw.execute("BEGIN IMMEDIATE")  # the write lock, before the trigger goes
            raw.execute(_BUMP_VERSION)  # once for the chunk, instead of once per response
            if trigger:
                raw.execute(f'DROP TRIGGER "{_VERSION_TRIGGER}"')
            raw.executemany(insert, responses)
            chunks.prefetch()
            raw.execute(_EXPAND_SQL, (int(ids[0]), int(ids[-1])))
            if trigger:
                raw.execute(trigger[0])  # as the migration created it, in the same transaction
            raw.commit()
            checkpoints.start()
            yield len(ids)


class _Checkpoints:
    """SQLite: copy the write-ahead log into the database file in a second thread, with a
    connection of its own, while the next chunk is written.

    The seeding connection does not checkpoint itself (``wal_autocheckpoint=0``); after
    each commit this copies what is committed (``PASSIVE``: it never waits for, nor
    blocks, a reader or writer). Done by the committing connection, as SQLite does by
    default, the copy (with its fsyncs) would hold up every commit. The log can only
    start again from its beginning when everything in it is copied, so :meth:`wait` is
    called every ``CHECKPOINT_EVERY`` chunks (the log holds at most that many) and at the
    end (the seeding returns with the log copied, as before).
    """

    def __init__(self, raw):
        self.raw = raw
        path = next(
            (file for _, name, file in raw.execute("PRAGMA database_list") if name == "main"), ""
        )
        self.connection = (
            sqlite3.connect(path, timeout=10.0, check_same_thread=False) if path else None
        )
        self.worker = ThreadPoolExecutor(max_workers=1)
        self.pending = []

    def __enter__(self):
        if self.connection:
            self.raw.execute("PRAGMA wal_autocheckpoint=0")
        return self

    def start(self) -> None:
        """Copy what is committed now, in the background."""
        if self.connection:
            self.pending.append(self.worker.submit(self._checkpoint))

    def _checkpoint(self) -> None:
        self.connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def wait(self) -> None:
        """Until every copy started is done (raising what one raised)."""
        pending, self.pending = self.pending, []
        for future in pending:
            future.result()

    def __exit__(self, kind, error, trace):
        try:
            if kind is None:
                self.wait()
        finally:
            self.worker.shutdown(wait=True)
            if self.connection:
                self.connection.close()


def _load_postgresql(raw, practices: list[str], chunks: _Ahead) -> Iterator[int]:
    """Write the chunks through the psycopg connection ``raw`` in one transaction; yield
    each chunk's size once it is sent; commit after the last."""
    answers = _AnswerCopy(practices)
    with raw.cursor() as cursor:
        # Fail clearly, rather than hang, if another session is using the tables.
        cursor.execute("SET LOCAL lock_timeout = '15s'")
        # No other session may insert answers until the seeding commits: the reserved ids
        # below stay the seeding's own, and the dropped foreign keys are never missed.
        cursor.execute("LOCK TABLE answer IN EXCLUSIVE MODE")
        keys = _drop_answer_foreign_keys(cursor)
        for ids, responses, cells in chunks:
            with cursor.copy(f"COPY response ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
                for row in responses:
                    copy.write_row(row)
            chunks.prefetch()
            first = _reserve_answer_ids(cursor, cells.size)
            with cursor.copy(f"COPY answer ({', '.join(_AnswerCopy.COLUMNS)}) FROM STDIN") as copy:
                for start in range(0, len(ids), COPY_BLOCK):
                    stop = start + COPY_BLOCK
                    block = answers.block(
                        ids[start:stop], cells[start:stop], first + start * cells.shape[1]
                    )
                    copy.write(block)
            yield len(ids)
        # Ids were given explicitly: move the sequence past them for later inserts.
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('response', 'id'), "
            "(SELECT MAX(id) FROM response))"
        )
        _restore_foreign_keys(cursor, keys)
    raw.commit()


def _reserve_answer_ids(cursor, count: int) -> int:
    """Take ``count`` consecutive ids from the answer table's sequence; return the first.

    One statement, while the seeding holds the table's lock (no insert elsewhere can draw
    from the sequence in between).
    """
    cursor.execute(
        "SELECT setval(pg_get_serial_sequence('answer', 'id'), "
        "nextval(pg_get_serial_sequence('answer', 'id')) + %s - 1)",
        (count,),
    )
    return cursor.fetchone()[0] - count + 1


def _drop_answer_foreign_keys(cursor) -> list[tuple[str, str]]:
    """Drop the answer table's foreign keys (PostgreSQL); return (name, definition) pairs."""
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'answer'::regclass AND contype = 'f' ORDER BY conname"
    )
    keys = [tuple(key) for key in cursor.fetchall()]
    for name, _ in keys:
        cursor.execute(f'ALTER TABLE answer DROP CONSTRAINT "{name}"')
    return keys


def _restore_foreign_keys(cursor, keys: list[tuple[str, str]]) -> None:
    """Add the dropped foreign keys back; PostgreSQL validates every row as it does so."""
    for name, definition in keys:
        cursor.execute(f'ALTER TABLE answer ADD CONSTRAINT "{name}" {definition}')


def _copy_text(value: str) -> str:
    """``value`` escaped for a field of COPY's text format."""
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """Positive integers as right-aligned decimal text, blank-padded: ``values.shape`` x
    ``width`` uint8."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    values = np.asarray(values, dtype=np.int64)[..., None]
    digits = (values // powers) % 10 + ord("0")
    return np.where((values < powers) & (powers > 1), ord(" "), digits).astype(np.uint8)


class _AnswerCopy:
    """COPY text of the answer rows, assembled with numpy: no Python object per row.

    A row is ``id, response_id, practice_id, company_kind, met, rating, rating_mixed``;
    apart from its two ids, its text depends on its cell and the cell's character only, so
    each cell has one template per character (the meaning of each character from
    :func:`survey.vectors.decode_cell`). The ids are right-aligned in a fixed width and each
    template is padded with blanks after ``rating_mixed`` to the longest of its cell
    (PostgreSQL's integer and boolean input ignore surrounding blanks), so every
    respondent's rows take the same number of bytes and a block of respondents is one
    uint8 matrix, filled one cell at a time for all of them.
    """

    COLUMNS = ("id", "response_id", "practice_id", "company_kind", "met", "rating", "rating_mixed")

    def __init__(self, practices: list[str]):
        cells = _index_order(practices)
        self.positions = np.array([pos for pos, _, _ in cells])
        self.character = np.full(256, -1, dtype=np.intp)  # a code's character -> template
        for j, ch in enumerate(_DEMO_CELLS):
            self.character[ord(ch)] = j
        self.templates = []
        for _, pid, kind in cells:
            lines = []
            for ch in _DEMO_CELLS:
                met, rating, mixed = decode_cell(ch)
                rating_text = "\\N" if rating is None else str(rating)
                lines.append(f"{_copy_text(pid)}\t{kind}\t{met}\t{rating_text}\t{'tf'[not mixed]}")
            width = max(map(len, lines))
            text = "".join(f"{line:<{width}}\n" for line in lines).encode()
            self.templates.append(np.frombuffer(text, dtype=np.uint8).reshape(len(lines), -1))

    def block(self, response_ids: np.ndarray, cells: np.ndarray, first_id: int) -> bytes:
        """The rows of these respondents (``cells``: their vectors as uint8), answer ids
        from ``first_id`` on, in index order."""
        count, per = len(response_ids), len(self.templates)
        width = len(str(max(int(response_ids[-1]), first_id + count * per - 1)))
        answer_ids = _digits(first_id + np.arange(count * per).reshape(count, per), width)
        respondent = _digits(response_ids, width)
        chosen = self.character[cells[:, self.positions]]
        if (chosen < 0).any():
            raise ValueError("an answer code holds a character the demo does not draw")
        lengths = [2 * (width + 1) + template.shape[1] for template in self.templates]
        out = np.empty((count, sum(lengths)), dtype=np.uint8)
        at = 0
        for c, template in enumerate(self.templates):
            out[:, at : at + width] = answer_ids[:, c]
            out[:, at + width] = ord("\t")
            out[:, at + width + 1 : at + 2 * width + 1] = respondent
            out[:, at + 2 * width + 1] = ord("\t")
            out[:, at + 2 * width + 2 : at + lengths[c]] = template[chosen[:, c]]
            at += lengths[c]
        return out.tobytes()


def delete_demo() -> int:
    """Delete every demo response and its answers; return how many responses."""
    ids = select(Response.id).where(Response.is_demo.is_(True))
    db.session.execute(Answer.__table__.delete().where(Answer.response_id.in_(ids)))
    result = db.session.execute(Response.__table__.delete().where(Response.is_demo.is_(True)))
    db.session.commit()
    return result.rowcount
