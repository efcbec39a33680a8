"""Synthetic demo respondents: realistic structure, reproducible from a seed, bulk-inserted.

Every row written here has ``is_demo = TRUE``. Nothing here is real data, and every page,
report and file that shows it says so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
from sqlalchemy import func, select, text

from survey.catalog import Catalog
from survey.extensions import db
from survey.models import COMPANY_KINDS, Answer, Response, new_export_id
from survey.questions import (
    BACKGROUND_BY_FIELD,
    FUNCTION_OPTIONS,
    KIND_FIELDS,
    ROLE_OPTIONS,
    kind_field,
)
from survey.responses import catalog_version_id, default_wave, layout, today

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
# which is stored as the response's answer_code and which the database expands into
# answer rows (see _EXPAND_SQL):
# "a" not applicable (kind not worked in), "n" no, "d" don't know, "r" not my role, "e"
# existed but not for me; applied: "1".."5" with that rating, "m" rated "mixed / can't
# say", "p" without a rating.
_NA, _NO, _DK, _NOT_MINE, _EXISTED = (ord(c) for c in "andre")
_MIXED, _UNRATED = ord("m"), ord("p")


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
    each kind's block; none looks like a response from before 2026-12.

    Python draws the answers with numpy and hands the database one short code string per
    respondent; the database expands it into the answer rows itself (INSERT ... SELECT
    over a cross join with the catalogue's cells). Binding five values per answer row from
    Python was three quarters of the seeding time. On SQLite each chunk is one transaction.
    The code string is in the alphabet and layout of :mod:`survey.vectors` (the real
    practices of the served catalogue version, in its snapshot's order, times the two
    kinds), so it is also stored as each response's ``answer_code``, in the same
    transaction as its rows.

    On SQLite the seeding connection also skips the per-row CHECK and FOREIGN KEY
    evaluation, which was half of what remained: every row is valid by construction (the
    CASE expressions of ``_EXPAND_SQL``, ids inserted in the same transaction, practice
    ids from the catalogue), the tests check the stored rows against every constraint, and
    the connection is discarded afterwards so no other work ever runs without them.

    On PostgreSQL the whole seeding is one transaction which, as the PostgreSQL manual
    advises for bulk loads ("Populating a Database"), drops the answer table's foreign keys
    and adds them back at the end, when one join validates every row at once instead of
    two trigger calls per row (which were 60% of the time). The transaction holds an
    exclusive lock on the answer table until it commits: seed a study before fieldwork,
    not during it. An interrupted seeding leaves nothing behind.
    """
    if not -1.0 <= correlation <= 1.0:
        raise ValueError(f"correlation must lie in [-1, 1], got {correlation!r}")
    rng = np.random.default_rng(seed)
    params = practice_parameters(cat, rng)
    wave_id = default_wave().id
    version_id = catalog_version_id()
    start_id = (db.session.scalar(select(func.max(Response.id))) or 0) + 1
    db.session.commit()  # no transaction of ours may hold a lock the seeding waits for
    practices = [p.id for p in cat.practices]
    if tuple(practices) != layout(version_id):
        raise ValueError("the catalogue to seed is not the one this application serves")
    with db.engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.exec_driver_sql("PRAGMA ignore_check_constraints=ON")
        cells = [
            (i * 2 + k + 1, pid, kind)
            for i, pid in enumerate(practices)
            for k, kind in enumerate(COMPANY_KINDS)
        ]
        _create_staging(connection, cells)
        try:
            foreign_keys = [] if sqlite else _drop_answer_foreign_keys(connection)
            done = 0
            while done < n:
                size = min(chunk, n - done)
                ids = np.arange(start_id + done, start_id + done + size)
                responses, codes = _chunk(
                    rng, ids, params, practices, wave_id, version_id, correlation
                )
                _bulk_insert(connection, responses, codes)
                if sqlite:
                    connection.commit()
                done += size
                if progress:
                    progress(size)
            _restore_foreign_keys(connection, foreign_keys)
            connection.commit()
        finally:
            # Closed, never back to the pool: its pragmas are changed, and its temporary
            # staging tables go with it.
            connection.invalidate()
    return n


_RESPONSE_COLUMNS = (
    "id", "export_id", "resume_token_hash", "status", "wave_id", "catalog_version_id",
    "language", "is_demo", "consent_version", "consented_on", "started_on", "updated_on",
    "submitted_on", "last_page", "worked_in", "answer_code",
)  # fmt: skip
_BACKGROUND_COLUMNS = tuple(name for name in BACKGROUND_BY_FIELD if name != "worked_in")
_KIND_COLUMNS = tuple(kind_field(kind, name) for kind in COMPANY_KINDS for name in KIND_FIELDS)


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
    recent = np.where(rng.random(size) < 0.5, "ru", "foreign")
    ago = {}
    for kind, other in (("ru", "foreign"), ("foreign", "ru")):
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
                np.where(np.isin(employer, ("ru", "foreign")), during_other, lately),
            ),
        )
    for kind, other in (("ru", "foreign"), ("foreign", "ru")):
        neither = (worked == "both") & ~np.isin(employer, ("ru", "foreign"))
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


def _chunk(rng, ids, params, practices, wave_id, version_id, correlation):
    """Draw one chunk: response rows (tuples, each with its answer vector) and
    ``(response id, answer code)`` pairs for the expansion into answer rows."""
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
    first_day = today() - dt.timedelta(days=45)
    day_of = [(first_day + dt.timedelta(days=d)).isoformat() for d in range(45)]
    fixed = ("submitted", wave_id, version_id)
    rows = [
        (int(rid), new_export_id(), None, *fixed, language, True, DEMO_CONSENT,
         day, day, day, day, 99, str(w))
        for rid, language, w, day in zip(
            ids.tolist(), lang.tolist(), worked.tolist(), (day_of[d] for d in days.tolist()),
            strict=True,
        )
    ]  # fmt: skip
    # Answer codes, one column per (practice, kind) in the order of the staging cells.
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
    responses = [
        (*row, code, *values)
        for row, code, *values in zip(
            rows, strings,
            *(background[name].tolist() for name in _BACKGROUND_COLUMNS),
            *(blocks[name].tolist() for name in _KIND_COLUMNS), strict=True,
        )
    ]  # fmt: skip
    return responses, list(zip(ids.tolist(), strings, strict=True))


def _create_staging(connection, cells: list[tuple]) -> None:
    connection.execute(
        text("CREATE TEMPORARY TABLE demo_cell (pos INTEGER PRIMARY KEY, "
             "practice_id VARCHAR(64) NOT NULL, company_kind VARCHAR(8) NOT NULL)")
    )  # fmt: skip
    connection.execute(
        text("CREATE TEMPORARY TABLE demo_code (response_id INTEGER PRIMARY KEY, code TEXT)")
    )
    connection.execute(
        text("INSERT INTO demo_cell (pos, practice_id, company_kind) VALUES (:p, :i, :k)"),
        [{"p": p, "i": i, "k": k} for p, i, k in cells],
    )
    connection.commit()


def _drop_answer_foreign_keys(connection) -> list[tuple[str, str]]:
    """Drop the answer table's foreign keys (PostgreSQL); return (name, definition) pairs."""
    # Fail clearly, rather than hang, if another session is using the table.
    connection.exec_driver_sql("SET LOCAL lock_timeout = '15s'")
    keys = connection.execute(
        text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'answer'::regclass AND contype = 'f' ORDER BY conname"
        )
    ).all()
    for name, _ in keys:
        connection.exec_driver_sql(f'ALTER TABLE answer DROP CONSTRAINT "{name}"')
    return [tuple(key) for key in keys]


def _restore_foreign_keys(connection, keys: list[tuple[str, str]]) -> None:
    """Add the dropped foreign keys back; PostgreSQL validates every row as it does so."""
    for name, definition in keys:
        connection.exec_driver_sql(f'ALTER TABLE answer ADD CONSTRAINT "{name}" {definition}')


# The database turns each respondent's code string into one answer row per cell. The
# CASE expressions can only yield valid codes, a rating or "mixed" only with "applied",
# and never both.
_EXPAND_SQL = """
INSERT INTO answer (response_id, practice_id, company_kind, met, rating, rating_mixed)
SELECT response_id, practice_id, company_kind,
       CASE ch WHEN 'n' THEN 'no' WHEN 'd' THEN 'dk' WHEN 'a' THEN 'na'
               WHEN 'r' THEN 'not_my_role' WHEN 'e' THEN 'existed' ELSE 'applied' END,
       CASE WHEN ch IN ('1', '2', '3', '4', '5') THEN CAST(ch AS INTEGER) END,
       ch = 'm'
FROM (SELECT c.response_id, cell.practice_id, cell.company_kind,
             substr(c.code, cell.pos, 1) AS ch
      FROM demo_code c CROSS JOIN demo_cell cell) AS expanded
"""


def _bulk_insert(connection, responses: list[tuple], codes: list[tuple]) -> None:
    """Insert one chunk with the driver's fastest bulk path (the caller commits)."""
    columns = (*_RESPONSE_COLUMNS, *_BACKGROUND_COLUMNS, *_KIND_COLUMNS)
    if connection.dialect.name == "postgresql":
        # The transaction was opened through SQLAlchemy (_drop_answer_foreign_keys), so the
        # caller's commit covers what this raw cursor writes.
        with connection.connection.driver_connection.cursor() as cursor:
            with cursor.copy(f"COPY response ({', '.join(columns)}) FROM STDIN") as copy:
                for row in responses:
                    copy.write_row(row)
            with cursor.copy("COPY demo_code (response_id, code) FROM STDIN") as copy:
                for row in codes:
                    copy.write_row(row)
            cursor.execute(_EXPAND_SQL)
            cursor.execute("DELETE FROM demo_code")
            # Ids were given explicitly: move the sequence past them for later inserts.
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence('response', 'id'), "
                "(SELECT MAX(id) FROM response))"
            )
    else:
        # Through the SQLAlchemy connection (executemany underneath), so that it knows a
        # transaction is open and the caller's commit really commits each chunk.
        marks = ", ".join("?" * len(columns))
        # Column names are this module's constants, never input.
        insert_sql = f"INSERT INTO response ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608
        connection.exec_driver_sql(insert_sql, responses)
        connection.exec_driver_sql("INSERT INTO demo_code (response_id, code) VALUES (?, ?)", codes)
        connection.exec_driver_sql(_EXPAND_SQL)
        connection.exec_driver_sql("DELETE FROM demo_code")


def delete_demo() -> int:
    """Delete every demo response and its answers; return how many responses."""
    ids = select(Response.id).where(Response.is_demo.is_(True))
    db.session.execute(Answer.__table__.delete().where(Answer.response_id.in_(ids)))
    result = db.session.execute(Response.__table__.delete().where(Response.is_demo.is_(True)))
    db.session.commit()
    return result.rowcount
