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
from survey.questions import BACKGROUND_BY_FIELD
from survey.responses import catalog_version_id, default_wave, today

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
    "experience_band": {"lt3": 0.08, "3_5": 0.17, "6_10": 0.3, "11_20": 0.3, "20plus": 0.15},
    "region": {"moscow": 0.55, "spb": 0.2, "other_ru": 0.18, "abroad": 0.07},
}
DK_SHARE = 0.06
# Within-person correlation between a respondent's answers about the two kinds (phi of the
# yes/no answers to one practice; latent correlation of the ratings), for respondents who
# worked in both. Strong enough that a test treating the two kinds as independent samples
# visibly disagrees with the partially overlapping samples test (issue 13).
DEFAULT_CORRELATION = 0.6


def practice_parameters(cat: Catalog, rng: np.random.Generator) -> dict[str, dict]:
    """Per practice: base prevalence in each kind and mean rating in each kind.

    About a quarter of the practices get the same prevalence in both kinds (no
    difference at all); the others are more common in foreign companies, some strongly,
    and a few are more common in Russian companies.
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
        }
    return params


def _ratings(centre: float, latent: np.ndarray) -> np.ndarray:
    """Ratings 1-5 around ``centre`` from standard normal ``latent`` scores."""
    return np.clip(np.rint(centre + 0.9 * latent), 1, 5).astype(int)


def both_yes_share(p_ru: float, p_foreign: float, correlation: float) -> float:
    """P(yes about both kinds) for answers with these shares of yes and this phi correlation.

    Clipped to what the two shares allow (the Frechet bounds): two shares far apart
    cannot be correlated with phi near 1, nor near -1.
    """
    spread = np.sqrt(p_ru * (1 - p_ru) * p_foreign * (1 - p_foreign))
    share = p_ru * p_foreign + correlation * spread
    return float(np.clip(share, max(0.0, p_ru + p_foreign - 1), min(p_ru, p_foreign)))


def _paired_yes(
    u: np.ndarray, p_ru: float, p_foreign: float, correlation: float
) -> tuple[np.ndarray, np.ndarray]:
    """Yes about Russian, yes about foreign companies, from one uniform draw per person.

    The unit interval is cut so that ``[0, p_ru)`` is yes about Russian companies and
    ``[0, p11) + [p_ru, p_ru + p_foreign - p11)`` yes about foreign ones: each share is
    exact, and both is ``p11`` (:func:`both_yes_share`).
    """
    p11 = both_yes_share(p_ru, p_foreign, correlation)
    ru = u < p_ru
    foreign = (u < p11) | ((u >= p_ru) & (u < p_ru + p_foreign - p11))
    return ru, foreign


# One character per answer cell in the compact code the database expands (see _EXPAND_SQL):
# "n" no, "d" don't know, "a" not applicable, "1".."5" yes with that rating.
_NO, _DK, _NA = ord("n"), ord("d"), ord("a")


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
    of company: it is the phi correlation of their yes/no answers about one practice
    (clipped per practice to what its two prevalences allow, see :func:`both_yes_share`)
    and the correlation of the normal scores behind their two ratings (the rounded 1-5
    ratings correlate a little less). Everything else is drawn independently: answers to
    different practices, don't-know (``DK_SHARE`` per answer), and the background.

    Python draws the answers with numpy and hands the database one short code string per
    respondent; the database expands it into the answer rows itself (INSERT ... SELECT
    over a cross join with the catalogue's cells). Binding five values per answer row from
    Python was three quarters of the seeding time. On SQLite each chunk is one transaction.

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
    "submitted_on", "last_page", "worked_in",
)  # fmt: skip


def _chunk(rng, ids, params, practices, wave_id, version_id, correlation):
    """Draw one chunk: response rows (tuples) and one answer code string per response."""
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
    background["region"] = np.where(rng.random(size) < 0.2, None, background["region"])
    days = rng.integers(0, 45, size=size)
    lang = np.where(rng.random(size) < 0.8, "ru", "en")
    first_day = today() - dt.timedelta(days=45)
    extra = [name for name in codes if name != "worked_in"]
    day_of = [(first_day + dt.timedelta(days=d)).isoformat() for d in range(45)]
    fixed = ("submitted", wave_id, version_id)
    responses = [
        (int(rid), new_export_id(), None, *fixed, language, True, DEMO_CONSENT,
         day, day, day, day, 99, str(w), *values)
        for rid, language, w, day, *values in zip(
            ids.tolist(), lang.tolist(), worked.tolist(), (day_of[d] for d in days.tolist()),
            *(background[name].tolist() for name in extra), strict=True,
        )
    ]  # fmt: skip
    # Answer codes, one column per (practice, kind) in the order of the staging cells.
    cells = np.empty((size, 2 * len(practices)), dtype=np.uint8)
    asks = {"ru": worked != "foreign_only", "foreign": worked != "ru_only"}
    # Both kinds are drawn jointly for everyone; a one-kind respondent keeps one of them,
    # whose distribution is the kind's own, so the correlation only shows in the pairs.
    mix = np.sqrt(1.0 - correlation**2)
    for i, pid in enumerate(practices):
        par = params[pid]
        yes_ru, yes_foreign = _paired_yes(
            rng.random(size), par["p"]["ru"], par["p"]["foreign"], correlation
        )
        met_yes = {"ru": yes_ru, "foreign": yes_foreign}
        latent_ru = rng.standard_normal(size)
        latent = {
            "ru": latent_ru,
            "foreign": correlation * latent_ru + mix * rng.standard_normal(size),
        }
        for k, kind in enumerate(COMPANY_KINDS):
            is_dk = rng.random(size) < DK_SHARE
            ratings = _ratings(par["rating"][kind], latent[kind]) + ord("0")
            column = np.where(is_dk, _DK, np.where(met_yes[kind], ratings, _NO))
            cells[:, 2 * i + k] = np.where(asks[kind], column, _NA)
    strings = cells.view(f"S{cells.shape[1]}").ravel()
    answer_codes = list(zip(ids.tolist(), np.char.decode(strings, "ascii").tolist(), strict=True))
    return responses, answer_codes


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
# CASE expressions can only yield valid codes, and a rating only with "yes".
_EXPAND_SQL = """
INSERT INTO answer (response_id, practice_id, company_kind, met, rating)
SELECT response_id, practice_id, company_kind,
       CASE ch WHEN 'n' THEN 'no' WHEN 'd' THEN 'dk' WHEN 'a' THEN 'na' ELSE 'yes' END,
       CASE WHEN ch IN ('1', '2', '3', '4', '5') THEN CAST(ch AS INTEGER) END
FROM (SELECT c.response_id, cell.practice_id, cell.company_kind,
             substr(c.code, cell.pos, 1) AS ch
      FROM demo_code c CROSS JOIN demo_cell cell) AS expanded
"""


def _bulk_insert(connection, responses: list[tuple], codes: list[tuple]) -> None:
    """Insert one chunk with the driver's fastest bulk path (the caller commits)."""
    columns = (*_RESPONSE_COLUMNS, *(n for n in BACKGROUND_BY_FIELD if n != "worked_in"))
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
