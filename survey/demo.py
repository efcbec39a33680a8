"""Synthetic demo respondents: realistic structure, reproducible from a seed, bulk-inserted.

Every row written here has ``is_demo = TRUE``. Nothing here is real data, and every page,
report and file that shows it says so.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable

import numpy as np
from sqlalchemy import func, insert, select

from survey.catalog import Catalog
from survey.extensions import db
from survey.models import Answer, Response
from survey.questions import BACKGROUND_BY_FIELD, CONSENT_VERSION
from survey.responses import catalog_version_id, default_wave, today

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


def _ratings(rng: np.random.Generator, centre: float, size: int) -> np.ndarray:
    values = np.rint(rng.normal(centre, 0.9, size))
    return np.clip(values, 1, 5).astype(int)


def seed_demo(
    cat: Catalog,
    n: int,
    seed: int,
    *,
    chunk: int = 5000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Insert ``n`` synthetic submitted responses with all their answers; return n."""
    rng = np.random.default_rng(seed)
    params = practice_parameters(cat, rng)
    wave_id = default_wave().id
    version_id = catalog_version_id()
    db.session.commit()
    start_id = (db.session.scalar(select(func.max(Response.id))) or 0) + 1
    practices = [p.id for p in cat.practices]
    done = 0
    while done < n:
        size = min(chunk, n - done)
        ids = np.arange(start_id + done, start_id + done + size)
        responses, answers = _chunk(rng, ids, params, practices, wave_id, version_id)
        _bulk_insert(responses, answers)
        done += size
        if progress:
            progress(size)
    return n


def _chunk(rng, ids, params, practices, wave_id, version_id):
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
    # A respondent's propensity to have met practices shifts all their answers together,
    # which makes the answers of one person (and their two kinds) correlated.
    propensity = rng.normal(0.0, 0.8, size=size)
    first_day = today() - dt.timedelta(days=45)
    responses = []
    for j, rid in enumerate(ids):
        day = first_day + dt.timedelta(days=int(days[j]))
        responses.append(
            {
                "id": int(rid),
                "export_id": secrets.token_hex(8),
                "resume_token_hash": None,
                "status": "submitted",
                "wave_id": wave_id,
                "catalog_version_id": version_id,
                "language": str(lang[j]),
                "is_demo": True,
                "consent_version": CONSENT_VERSION,
                "consented_on": day,
                "started_on": day,
                "updated_on": day,
                "submitted_on": day,
                "last_page": 99,
                "worked_in": str(worked[j]),
                **{
                    name: (None if v is None else str(v))
                    for name, v in ((name, background[name][j]) for name in codes)
                    if name != "worked_in"
                },
            }
        )
    answers = []
    asks_ru = worked != "foreign_only"
    asks_foreign = worked != "ru_only"
    id_list = [int(rid) for rid in ids]
    for pid in practices:
        par = params[pid]
        for kind, asked in (("ru", asks_ru), ("foreign", asks_foreign)):
            logit = np.log(par["p"][kind] / (1 - par["p"][kind])) + propensity
            met_yes = rng.random(size) < 1 / (1 + np.exp(-logit))
            is_dk = rng.random(size) < DK_SHARE
            ratings = _ratings(rng, par["rating"][kind], size)
            met = np.where(~asked, "na", np.where(is_dk, "dk", np.where(met_yes, "yes", "no")))
            rating = [int(r) if m == "yes" else None for m, r in zip(met, ratings, strict=True)]
            answers.extend(
                zip(id_list, [pid] * size, [kind] * size, met.tolist(), rating, strict=True)
            )
    return responses, answers


def _bulk_insert(responses: list[dict], answers: list[tuple]) -> None:
    """Insert one chunk in one transaction, with the driver's fastest bulk path."""
    connection = db.session.connection()
    connection.execute(insert(Response), responses)
    raw = connection.connection.driver_connection
    if connection.dialect.name == "postgresql":
        with raw.cursor() as cursor:
            copy_sql = (
                "COPY answer (response_id, practice_id, company_kind, met, rating) FROM STDIN"
            )
            with cursor.copy(copy_sql) as copy:
                for row in answers:
                    copy.write_row(row)
            # Ids were given explicitly: move the sequence past them for later inserts.
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence('response', 'id'), "
                "(SELECT MAX(id) FROM response))"
            )
    else:
        # Rows in primary-key order append to the unique index instead of scattering.
        answers.sort(key=lambda row: (row[0], row[1], row[2]))
        cursor = raw.cursor()
        cursor.executemany(
            "INSERT INTO answer (response_id, practice_id, company_kind, met, rating) "
            "VALUES (?, ?, ?, ?, ?)",
            answers,
        )
        cursor.close()
    db.session.commit()


def delete_demo() -> int:
    """Delete every demo response and its answers; return how many responses."""
    ids = select(Response.id).where(Response.is_demo.is_(True))
    db.session.execute(Answer.__table__.delete().where(Answer.response_id.in_(ids)))
    result = db.session.execute(Response.__table__.delete().where(Response.is_demo.is_(True)))
    db.session.commit()
    return result.rowcount
