"""The owner's fieldwork pages and commands: waves, channels, QR codes, invitations, quotas.

Through HTTP with real CSRF tokens (survey/manage.py) and through the CLI
(survey/manage_cli.py), on SQLite and PostgreSQL. Expected moments, hashes and counts are
computed here independently (UTC offsets written out, hashlib, plain recounts).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
import struct
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from survey import queries
from survey.extensions import db
from survey.models import Channel, Invitation, Quota, Response, Wave
from tests.helpers import Respondent, log_in, researcher

CSRF_INPUT = re.compile(r'<input[^>]*name="csrf_token"[^>]*>')
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG_NS = "{http://www.w3.org/2000/svg}"


pytestmark = pytest.mark.usefixtures("fresh_cache")


# ---------------------------------------------------------------- helpers


def page_csrf(html: str) -> str:
    """The CSRF token of a page's forms (one per session)."""
    tag = CSRF_INPUT.search(html)
    assert tag, "no CSRF token on the page"
    return re.search(r'value="([^"]+)"', tag.group(0)).group(1)


class Browser:
    """A logged-in researcher's browser."""

    def __init__(self, app, role: str = "owner", lang: str = "ru"):
        who = researcher(app, role)
        self.email, self.token = who.email, who.token
        self.client = log_in(app, email=who.email)
        if lang != "ru":
            self.client.get(f"/lang/{lang}?next=/researcher/waves/")
        self._csrf = page_csrf(self.client.get("/researcher/login").text)

    def get(self, path: str, **kwargs):
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict | None = None, **kwargs):
        return self.client.post(path, data={"csrf_token": self._csrf, **(data or {})}, **kwargs)


def create_wave(browser: Browser, code: str = "spring", **fields):
    data = {
        "code": code,
        "name_ru": "Весенняя волна",
        "name_en": "Spring wave",
        "time_zone": "Europe/Moscow",
        "opens_at": "",
        "closes_at": "",
        "target": "",
        **fields,
    }
    return browser.post("/researcher/waves/", data)


def stored_wave(app, code: str) -> Wave | None:
    with app.app_context():
        wave = db.session.scalar(select(Wave).filter_by(code=code))
        if wave is not None:
            db.session.expunge(wave)
        return wave


def channels_of(app, code: str) -> dict[str, str]:
    """label -> slug of a wave's channels, from the database."""
    with app.app_context():
        rows = db.session.execute(
            select(Channel.label, Channel.slug).join(Wave).where(Wave.code == code)
        )
        return dict(rows.all())


def count_rows(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def all_database_text(app) -> str:
    """Every value of every table, as one text (to look for what must not be stored)."""
    with app.app_context():
        parts = []
        for table in db.metadata.sorted_tables:
            for row in db.session.execute(select(table)):
                parts.append(repr(tuple(row)))
        return "\n".join(parts)


def data_version(app) -> int:
    with app.app_context():
        return queries.data_version()


def invoke(app, *args: str):
    """``flask --app survey <args>`` on this app."""
    with app.app_context():
        return app.test_cli_runner().invoke(args=list(args))


# ---------------------------------------------------------------- waves and channels


def test_owner_creates_a_wave_with_two_channels_through_the_pages(app):
    owner = Browser(app)
    r = create_wave(owner, opens_at="2027-03-01T09:00", closes_at="2027-04-15T18:30", target="300")
    assert r.status_code == 302 and r.location.endswith("/researcher/waves/spring")
    wave = stored_wave(app, "spring")
    # Moscow is UTC+3 all year (no summer time since 2014).
    assert wave.opens_at == dt.datetime(2027, 3, 1, 6, 0)
    assert wave.closes_at == dt.datetime(2027, 4, 15, 15, 30)
    assert (wave.time_zone, wave.target, wave.is_pilot) == ("Europe/Moscow", 300, False)

    for label in ("linkedin", "hr-telegram"):
        r = owner.post("/researcher/waves/spring/channels", {"label": label})
        assert r.status_code == 302, r.text[:500]
    slugs = channels_of(app, "spring")
    assert set(slugs) == {"direct", "linkedin", "hr-telegram"}
    assert len(set(slugs.values())) == 3 and all(len(s) >= 16 for s in slugs.values())

    page = owner.get("/researcher/waves/spring")
    assert page.status_code == 200
    for slug in slugs.values():
        assert f"http://survey.test/s/{slug}" in page.text
    assert "2027-03-01 09:00 МСК" in page.text and "2027-04-15 18:30 МСК" in page.text
    assert "Ещё не открыта" in page.text  # not open yet

    listing = owner.get("/researcher/waves/")
    assert listing.status_code == 200
    row = re.search(r"<tr>\s*<td><a href=\"/researcher/waves/spring\">.*?</tr>", listing.text, re.S)
    assert row and "2027-03-01 09:00 МСК" in row.group(0) and ">300<" in row.group(0)
    assert re.search(r'class="num">3</td>\s*</tr>', row.group(0))  # three channels


def test_a_wave_in_another_time_zone_keeps_its_local_times(app):
    owner = Browser(app, lang="en")
    r = create_wave(owner, code="east", time_zone="Asia/Vladivostok", opens_at="2027-01-10T08:00")
    assert r.status_code == 302
    wave = stored_wave(app, "east")
    assert wave.opens_at == dt.datetime(2027, 1, 9, 22, 0)  # Vladivostok is UTC+10
    page = owner.get("/researcher/waves/east")
    assert "2027-01-10 08:00 Asia/Vladivostok" in page.text
    assert '<time datetime="2027-01-10T08:00+10:00">' in page.text


def test_form_errors_are_in_the_visitors_language_and_nothing_is_stored(app):
    for lang, expected in (
        ("ru", ("код — от 1 до 32", "закрытие должно быть позже открытия")),
        ("en", ("a code is 1-32", "the close must come after the opening")),
    ):
        owner = Browser(app, lang=lang)
        before = count_rows(app, Wave)
        r = create_wave(owner, code="Not A Code!")
        assert r.status_code == 200 and expected[0] in r.text
        assert 'aria-invalid="true"' in r.text
        r = create_wave(
            owner, code=f"w-{lang}", opens_at="2027-03-01T09:00", closes_at="2027-02-01T09:00"
        )
        assert r.status_code == 200 and expected[1] in r.text
        r = create_wave(owner, code=f"x-{lang}", opens_at="0001-01-01T00:00")
        assert r.status_code == 200 and "2000" in r.text
        r = create_wave(owner, code=f"y-{lang}", time_zone="Mars/Olympus_Mons")
        assert r.status_code == 200
        r = create_wave(owner, code=f"z-{lang}", target="0")
        assert r.status_code == 200
        assert count_rows(app, Wave) == before
    owner = Browser(app)
    assert create_wave(owner, code="dup").status_code == 302
    r = create_wave(owner, code="dup")
    assert r.status_code == 200 and "волна с таким кодом уже есть" in r.text
    r = owner.post("/researcher/waves/dup/channels", {"label": "direct"})
    assert r.status_code == 200 and "у этой волны уже есть канал с такой меткой" in r.text
    r = owner.post("/researcher/waves/dup/channels", {"label": "Bad Label"})
    assert r.status_code == 200 and "метка — от 1 до 40" in r.text
    assert set(channels_of(app, "dup")) == {"direct"}


def test_a_name_with_control_characters_is_stored_without_them(app):
    owner = Browser(app)
    r = create_wave(owner, code="ctl", name_ru="Весна\x00 2027", name_en="Spring\x07")
    assert r.status_code == 302
    wave = stored_wave(app, "ctl")
    assert (wave.name_ru, wave.name_en) == ("Весна 2027", "Spring")


def state_of(app, code: str, now: dt.datetime | None = None) -> str:
    """The wave's state recomputed from its stored moments."""
    wave = stored_wave(app, code)
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if wave.closes_at is not None and wave.closes_at <= now:
        return "closed"
    if wave.opens_at is None or wave.opens_at > now:
        return "scheduled"
    return "open"


def test_opening_and_closing_change_the_state(app):
    owner = Browser(app)
    create_wave(owner, code="w")
    assert state_of(app, "w") == "scheduled"
    assert owner.post("/researcher/waves/w/open").status_code == 302
    assert state_of(app, "w") == "open"
    page = owner.get("/researcher/waves/w").text
    assert "Открыта" in page and "Открыть сейчас" not in page and "Закрыть сейчас" in page
    assert owner.post("/researcher/waves/w/close").status_code == 302
    assert state_of(app, "w") == "closed"
    page = owner.get("/researcher/waves/w").text
    assert "Закрыта" in page and "Закрыть сейчас" not in page and "Открыть сейчас" in page
    # Reopening at a future moment: not open yet, the close cleared.
    r = owner.post("/researcher/waves/w/open", {"at": "2030-05-01T10:00"})
    assert r.status_code == 302
    wave = stored_wave(app, "w")
    assert wave.opens_at == dt.datetime(2030, 5, 1, 7, 0) and wave.closes_at is None
    assert state_of(app, "w") == "scheduled"
    r = owner.post("/researcher/waves/w/close", {"at": "2030-06-01T00:00"})
    assert r.status_code == 302
    assert stored_wave(app, "w").closes_at == dt.datetime(2030, 5, 31, 21, 0)
    # A close before the opening is a form error; nothing changes.
    r = owner.post("/researcher/waves/w/close", {"at": "2030-04-01T00:00"})
    assert r.status_code == 200 and "закрытие должно быть позже открытия" in r.text
    assert stored_wave(app, "w").closes_at == dt.datetime(2030, 5, 31, 21, 0)
    r = owner.post("/researcher/waves/w/open", {"at": "tomorrow"})
    assert r.status_code == 200 and stored_wave(app, "w").opens_at == dt.datetime(2030, 5, 1, 7)
    assert owner.post("/researcher/waves/nope/open").status_code == 404


def test_the_default_wave_and_the_pilot_mark(app):
    owner = Browser(app)
    create_wave(owner, code="first")
    create_wave(owner, code="second")
    assert stored_wave(app, "first").is_default and not stored_wave(app, "second").is_default
    assert owner.post("/researcher/waves/second/default").status_code == 302
    assert stored_wave(app, "second").is_default and not stored_wave(app, "first").is_default
    version = data_version(app)
    assert owner.post("/researcher/waves/second/pilot", {"is_pilot": "1"}).status_code == 302
    assert stored_wave(app, "second").is_pilot
    assert data_version(app) != version  # cached results leave out or take in its responses
    assert "ПИЛОТНАЯ ВОЛНА" in owner.get("/researcher/waves/second").text
    # The value asked for, not a toggle: the same post again changes nothing.
    assert owner.post("/researcher/waves/second/pilot", {"is_pilot": "1"}).status_code == 302
    assert stored_wave(app, "second").is_pilot
    assert owner.post("/researcher/waves/second/pilot", {"is_pilot": "0"}).status_code == 302
    assert not stored_wave(app, "second").is_pilot
    assert owner.post("/researcher/waves/second/pilot", {"is_pilot": "maybe"}).status_code == 400


# ---------------------------------------------------------------- QR codes


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_the_qr_code_of_a_channel_is_a_valid_svg_and_png(app):
    owner = Browser(app)
    create_wave(owner, code="qr")
    owner.post("/researcher/waves/qr/channels", {"label": "linkedin"})
    svg = owner.get("/researcher/waves/qr/channels/linkedin/qr.svg")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    root = ET.fromstring(svg.data)
    assert root.tag == f"{SVG_NS}svg"
    assert root.find(f"{SVG_NS}path") is not None  # the modules are drawn as one path
    assert b"<script" not in svg.data and b"http://survey.test/s/" not in svg.data
    png = owner.get("/researcher/waves/qr/channels/linkedin/qr.png")
    assert png.status_code == 200 and png.mimetype == "image/png"
    width, height = png_size(png.data)
    # A square of (modules + 2 * 4 quiet modules) * 10 pixels; a link this long needs at
    # least version 3 (29 modules).
    assert width == height and width % 10 == 0 and width // 10 >= 29 + 8
    assert png.headers["Cache-Control"] == "no-store"
    assert "qr-qr-linkedin.png" in png.headers["Content-Disposition"]
    for path in (
        "/researcher/waves/qr/channels/nope/qr.svg",
        "/researcher/waves/nope/channels/linkedin/qr.png",
        "/researcher/waves/qr/channels/linkedin/qr.gif",
    ):
        assert owner.get(path).status_code == 404, path


# ---------------------------------------------------------------- invitations


def test_twenty_invitations_download_once_and_only_their_hashes_are_stored(app):
    owner = Browser(app)
    create_wave(owner, code="panel")
    owner.post("/researcher/waves/panel/open")
    owner.post("/researcher/waves/panel/channels", {"label": "alumni"})
    page = owner.get("/researcher/waves/panel")
    assert "только там" in page.text  # the page says the links exist only in the download
    r = owner.post("/researcher/waves/panel/invitations", {"channel": "alumni", "count": "20"})
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert r.headers["Cache-Control"] == "no-store"
    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert (
        r.headers["Content-Disposition"]
        == f'attachment; filename="invitations-panel-alumni-{today}.csv"'
    )
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True))))
    assert rows[0] == ["invitation_link"] and len(rows) == 21
    links = [row[0] for row in rows[1:]]
    assert len(set(links)) == 20
    tokens = []
    for link in links:
        parts = urlsplit(link)
        assert (parts.scheme, parts.netloc) == ("http", "survey.test")
        assert parts.path.startswith("/i/")
        tokens.append(parts.path.removeprefix("/i/"))
    with app.app_context():
        stored = db.session.execute(
            select(Invitation.token_hash, Invitation.used_on, Invitation.response_id)
            .join(Channel)
            .where(Channel.label == "alumni")
        ).all()
    assert sorted(h for h, _, _ in stored) == sorted(
        hashlib.sha256(t.encode()).hexdigest() for t in tokens
    )
    assert all(used is None and rid is None for _, used, rid in stored)
    everything = all_database_text(app)
    assert not any(token in everything for token in tokens)
    for link in links[:3]:  # each opens the invitation's landing page
        landing = app.test_client().get(urlsplit(link).path)
        assert landing.status_code == 200, link
    page = owner.get("/researcher/waves/panel")
    row = re.search(r'<th scope="row">alumni</th>.*?</tr>', page.text, re.S).group(0)
    numbers = re.findall(r'<td class="num">([^<]*)</td>', row)
    assert numbers[-2:] == ["20", "0"]  # generated, used
    assert numbers[0] == "3"  # opened: the three landing pages


def test_invitation_requests_that_cannot_be_honoured_store_nothing(app):
    owner = Browser(app)
    create_wave(owner, code="panel")
    limit = app.config["MAX_INVITATIONS"]
    for data in (
        {"channel": "direct", "count": "0"},
        {"channel": "direct", "count": str(limit + 1)},
        {"channel": "direct", "count": "ten"},
        {"channel": "nope", "count": "5"},
        {"channel": "direct"},
    ):
        r = owner.post("/researcher/waves/panel/invitations", data)
        assert r.status_code == 200 and r.mimetype == "text/html", data
        assert 'class="field-error"' in r.text, data
    assert count_rows(app, Invitation) == 0


# ---------------------------------------------------------------- quotas


def test_quotas_are_set_shown_with_their_progress_and_deleted(app):
    catalog = app.extensions["survey_catalog"]
    owner = Browser(app)
    create_wave(owner, code="q", target="10")
    owner.post("/researcher/waves/q/open")
    owner.post("/researcher/waves/q/default")
    r = owner.post(
        "/researcher/waves/q/quotas", {"field": "industry", "value": "it", "target_count": "4"}
    )
    assert r.status_code == 302
    r = owner.post(
        "/researcher/waves/q/quotas",
        {"field": "region", "value": "moscow", "target_percent": "30", "closes": "y"},
    )
    assert r.status_code == 302
    for _ in range(2):  # two respondents in IT, in Moscow, through the bare link
        assert Respondent(app.test_client()).complete(catalog).status_code == 302
    with app.app_context():
        in_it = db.session.scalar(
            select(func.count()).where(
                Response.status == "submitted",
                Response.industry == "it",
                Response.is_demo.is_(False),
            )
        )
    page = owner.get("/researcher/waves/q")
    table = re.search(r'<table class="quotas-table">.*?</table>', page.text, re.S).group(0)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in table.split("<tr>")[2:]]
    assert in_it == 2
    assert cells[0][:6] == ["Отрасль", "ИТ и телеком", "4", "2", "нет", "нет"]
    assert cells[1][:6] == ["Регион", "Москва и область", "30.0% (3)", "2", "нет", "да"]
    with app.app_context():
        quota_ids = dict(db.session.execute(select(Quota.field, Quota.id).order_by(Quota.id)).all())
    r = owner.post("/researcher/waves/q/quotas/delete", {"quota": str(quota_ids["industry"])})
    assert r.status_code == 302
    with app.app_context():
        assert db.session.scalars(select(Quota.field)).all() == ["region"]


def test_quota_form_errors(app):
    owner = Browser(app)
    create_wave(owner, code="q")
    for data, message in (
        ({"field": "industry", "value": "moscow", "target_count": "4"}, "Выберите ответ"),
        ({"field": "industry", "value": "it"}, "Укажите либо"),
        (
            {"field": "industry", "value": "it", "target_count": "4", "target_percent": "5"},
            "Укажите либо",
        ),
        ({"field": "industry", "value": "it", "target_percent": "150"}, 'class="field-error"'),
        ({"field": "industry", "value": "it", "target_percent": "NaN"}, "Введите число"),
        ({"field": "industry", "value": "it", "target_percent": "-inf"}, 'class="field-error"'),
        ({"field": "no_such", "value": "it", "target_count": "4"}, 'class="field-error"'),
    ):
        r = owner.post("/researcher/waves/q/quotas", data)
        assert r.status_code == 200 and message in r.text, (data, r.status_code)
    assert count_rows(app, Quota) == 0
    create_wave(owner, code="other")
    owner.post(
        "/researcher/waves/other/quotas", {"field": "industry", "value": "it", "target_count": "4"}
    )
    with app.app_context():
        other_quota = db.session.scalar(select(Quota.id))
    # Another wave's quota cannot be deleted through this wave's page.
    r = owner.post("/researcher/waves/q/quotas/delete", {"quota": str(other_quota)})
    assert r.status_code == 400
    for bad in ("0", "x", str(10**30)):
        r = owner.post("/researcher/waves/q/quotas/delete", {"quota": bad})
        assert r.status_code == 400, bad
    assert count_rows(app, Quota) == 1


# ---------------------------------------------------------------- who may do what

OWNER_POSTS = (
    ("/researcher/waves/", {"code": "new", "name_ru": "Н", "name_en": "N"}),
    ("/researcher/waves/w/open", {}),
    ("/researcher/waves/w/close", {}),
    ("/researcher/waves/w/default", {}),
    ("/researcher/waves/w/pilot", {"is_pilot": "1"}),
    ("/researcher/waves/w/channels", {"label": "x"}),
    ("/researcher/waves/w/invitations", {"channel": "direct", "count": "5"}),
    ("/researcher/waves/w/quotas", {"field": "industry", "value": "it", "target_count": "3"}),
    ("/researcher/waves/w/quotas/delete", {"quota": "1"}),
)
OWNER_GETS = (
    "/researcher/waves/w/channels/direct/qr.svg",
    "/researcher/waves/w/channels/direct/qr.png",
)
READ_ONLY = ("/researcher/waves/", "/researcher/waves/w")


def snapshot(app) -> tuple:
    """Everything the owner's routes could change."""
    with app.app_context():
        return tuple(
            sorted(map(repr, db.session.execute(select(model.__table__)).all()))
            for model in (Wave, Channel, Invitation, Quota)
        )


def test_an_analyst_reads_the_waves_but_changes_nothing(app):
    owner = Browser(app)
    create_wave(owner, code="w", target="50")
    before = snapshot(app)
    analyst = Browser(app, role="analyst")
    for path in READ_ONLY:
        r = analyst.get(path)
        assert r.status_code == 200, path
        assert "<form" not in r.text.split("<main", 1)[1].replace('class="logout-form"', ""), path
    assert "Размер базы данных" not in analyst.get("/researcher/waves/").text
    assert "Размер базы данных" in owner.get("/researcher/waves/").text
    for path, data in OWNER_POSTS:
        r = analyst.post(path, data)
        assert r.status_code == 403, path
        assert "Доступ запрещён" in r.text
    for path in OWNER_GETS:
        assert analyst.get(path).status_code == 403, path
    assert snapshot(app) == before


def test_visitors_who_are_not_researchers_are_sent_to_log_in(app):
    owner = Browser(app)
    create_wave(owner, code="w")
    before = snapshot(app)
    visitor = app.test_client()
    token = page_csrf(visitor.get("/researcher/login").text)
    for path in (*READ_ONLY, *OWNER_GETS):
        r = visitor.get(path)
        assert r.status_code == 302 and "/researcher/login?next=" in r.location, path
        r = visitor.get(path, headers={"Accept": "application/json"})
        assert r.status_code == 401 and r.is_json, path
    for path, data in OWNER_POSTS:
        r = visitor.post(path, data={"csrf_token": token, **data})
        assert r.status_code == 302 and "/researcher/login?next=" in r.location, path
        assert visitor.post(path, data=data).status_code == 400, path  # no CSRF token
    # An owner's form post without the CSRF token is refused as well.
    for path, data in OWNER_POSTS:
        assert owner.client.post(path, data=data).status_code == 400, path
    assert snapshot(app) == before


def test_the_navigation_links_the_waves(app):
    for role in ("owner", "analyst"):
        browser = Browser(app, role=role, lang="en")
        page = browser.get("/researcher/")
        assert 'href="/researcher/waves/"' in page.text and ">Waves<" in page.text


# ---------------------------------------------------------------- storage


def test_the_owner_sees_the_database_size_and_the_last_backup(app, tmp_path):
    owner = Browser(app, lang="en")
    page = owner.get("/researcher/waves/")
    assert "Database size:" in page.text and "No backup has been taken yet" in page.text
    from survey import backup

    with app.app_context():
        _path, taken = backup.take_backup(tmp_path / "backups")
        file_name, taken_at = taken.file_name, taken.taken_at
    page = owner.get("/researcher/waves/")
    local = (taken_at + dt.timedelta(hours=3)).strftime("%Y-%m-%d %H:%M")
    assert f"Last backup: {local} MSK ({file_name}," in page.text


# ---------------------------------------------------------------- CLI


def test_the_cli_runs_a_wave_from_creation_to_close(app, tmp_path):
    r = invoke(
        app,
        "wave", "create", "autumn", "--name-ru", "Осень", "--name-en", "Autumn",
        "--opens-at", "2027-09-01T09:00", "--closes-at", "2027-10-01T21:00", "--target", "200",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    wave = stored_wave(app, "autumn")
    assert (wave.opens_at, wave.closes_at) == (
        dt.datetime(2027, 9, 1, 6, 0),
        dt.datetime(2027, 10, 1, 18, 0),
    )
    assert wave.target == 200
    r = invoke(app, "wave", "list")
    assert r.exit_code == 0 and "autumn\tnot open yet\topens 2027-09-01 09:00 MSK" in r.output
    assert invoke(app, "wave", "open", "autumn").exit_code == 0
    assert state_of(app, "autumn") == "open"
    r = invoke(app, "wave", "close", "autumn", "--at", "2031-01-01T00:00+00:00")
    assert r.exit_code == 0, r.output
    assert stored_wave(app, "autumn").closes_at == dt.datetime(2031, 1, 1)
    assert invoke(app, "wave", "close", "autumn").exit_code == 0
    assert state_of(app, "autumn") == "closed"
    assert invoke(app, "wave", "pilot", "autumn").exit_code == 0
    assert stored_wave(app, "autumn").is_pilot
    assert invoke(app, "wave", "pilot", "autumn", "--off").exit_code == 0
    assert not stored_wave(app, "autumn").is_pilot
    invoke(app, "wave", "create", "b", "--name-ru", "Б", "--name-en", "B")
    assert invoke(app, "wave", "default", "b").exit_code == 0
    assert stored_wave(app, "b").is_default and not stored_wave(app, "autumn").is_default


def test_the_cli_refuses_bad_input_and_stores_nothing(app):
    before = count_rows(app, Wave)
    for args in (
        ("wave", "create", "Bad Code", "--name-ru", "x", "--name-en", "x"),
        ("wave", "create", "w", "--name-ru", "x", "--name-en", "x", "--opens-at", "soon"),
        ("wave", "create", "w", "--name-ru", "x", "--name-en", "x", "--opens-at", "2027-01-01"),
        ("wave", "create", "w", "--name-ru", "x", "--name-en", "x", "--time-zone", "Nowhere"),
        ("wave", "create", "w", "--name-ru", "x", "--name-en", "x", "--target", "0"),
        ("wave", "create", "w", "--name-ru", "x\x00", "--name-en", "x"),
        (
            "wave", "create", "w", "--name-ru", "x", "--name-en", "x",
            "--opens-at", "2027-05-01T00:00", "--closes-at", "2027-04-01T00:00",
        ),
        ("wave", "open", "nope"),
        ("channel", "list", "nope"),
    ):  # fmt: skip
        r = invoke(app, *args)
        assert r.exit_code != 0, args
        assert isinstance(r.exception, SystemExit), (args, r.exception)  # a message
    assert count_rows(app, Wave) == before


def test_the_cli_makes_channels_qr_codes_and_invitations(app, tmp_path):
    invoke(app, "wave", "create", "w", "--name-ru", "В", "--name-en", "W")
    invoke(app, "wave", "open", "w")
    r = invoke(app, "channel", "create", "w", "linkedin")
    slug = channels_of(app, "w")["linkedin"]
    assert r.exit_code == 0 and f"http://survey.test/s/{slug}" in r.output
    assert invoke(app, "channel", "create", "w", "linkedin").exit_code != 0
    assert invoke(app, "channel", "create", "w", "Bad Label").exit_code != 0

    svg, png = tmp_path / "code.svg", tmp_path / "code.png"
    assert invoke(app, "channel", "qr", "w", "linkedin", "--out", str(svg)).exit_code == 0
    assert ET.parse(svg).getroot().tag == f"{SVG_NS}svg"
    assert invoke(app, "channel", "qr", "w", "linkedin", "--out", str(png)).exit_code == 0
    assert png_size(png.read_bytes())[0] > 0
    assert invoke(app, "channel", "qr", "w", "linkedin", "--out", str(png)).exit_code != 0
    assert (
        invoke(app, "channel", "qr", "w", "linkedin", "--out", str(tmp_path / "x.gif")).exit_code
        != 0
    )

    out = tmp_path / "invitations.csv"
    r = invoke(app, "invitations", "create", "w", "linkedin", "20", "--out", str(out))
    assert r.exit_code == 0, r.output
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert rows[0] == ["invitation_link"] and len({row[0] for row in rows[1:]}) == 20
    assert out.stat().st_mode & 0o077 == 0  # private file
    tokens = [urlsplit(row[0]).path.removeprefix("/i/") for row in rows[1:]]
    everything = all_database_text(app)
    assert not any(token in everything for token in tokens)
    assert count_rows(app, Invitation) == 20
    # An existing file is never overwritten, and nothing is generated then.
    content = out.read_bytes()
    r = invoke(app, "invitations", "create", "w", "linkedin", "5", "--out", str(out))
    assert r.exit_code != 0 and "exists" in r.output
    assert out.read_bytes() == content and count_rows(app, Invitation) == 20
    limit = str(app.config["MAX_INVITATIONS"] + 1)
    for count in ("0", limit, "x"):
        r = invoke(
            app,
            "invitations",
            "create",
            "w",
            "linkedin",
            count,
            "--out",
            str(tmp_path / f"n{count}.csv"),
        )
        assert r.exit_code != 0 and not (tmp_path / f"n{count}.csv").exists()
    missing = str(tmp_path / "no-such-folder" / "x.csv")
    r = invoke(app, "invitations", "create", "w", "linkedin", "5", "--out", missing)
    assert r.exit_code != 0 and isinstance(r.exception, SystemExit)
    assert count_rows(app, Invitation) == 20

    r = invoke(app, "channel", "list", "w")
    assert r.exit_code == 0
    assert re.search(
        r"linkedin\t\S+\topened 0\tstarted 0\tcompleted 0\t.*invitations 20 \(used 0\)", r.output
    )


def test_the_cli_sets_lists_and_deletes_quotas(app):
    invoke(app, "wave", "create", "w", "--name-ru", "В", "--name-en", "W", "--target", "100")
    r = invoke(app, "quota", "set", "w", "industry", "it", "--count", "30", "--closes")
    assert r.exit_code == 0, r.output
    assert invoke(app, "quota", "set", "w", "region", "moscow", "--share", "0.25").exit_code == 0
    r = invoke(app, "quota", "list", "w")
    assert "industry=it\ttarget 30 (count)\tachieved 0\topen\tcloses when full" in r.output
    assert "region=moscow\ttarget 25 (25.0%)\tachieved 0\topen" in r.output
    for args in (
        ("quota", "set", "w", "industry", "moscow", "--count", "3"),
        ("quota", "set", "w", "industry", "it"),
        ("quota", "set", "w", "industry", "it", "--count", "3", "--share", "0.1"),
        ("quota", "set", "w", "industry", "it", "--share", "1.5"),
        ("quota", "delete", "w", "industry", "finance"),
    ):
        r = invoke(app, *args)
        assert r.exit_code != 0 and isinstance(r.exception, SystemExit), args
    assert invoke(app, "quota", "delete", "w", "industry", "it").exit_code == 0
    with app.app_context():
        assert db.session.execute(select(Quota.field, Quota.target_share)).all() == [
            ("region", 0.25)
        ]


def test_channel_counts_follow_respondents_through_their_link(app):
    """Opened, started and completed per channel equal a recount of the database."""
    catalog = app.extensions["survey_catalog"]
    owner = Browser(app)
    create_wave(owner, code="w")
    owner.post("/researcher/waves/w/open")
    owner.post("/researcher/waves/w/channels", {"label": "linkedin"})
    slug = channels_of(app, "w")["linkedin"]
    done = app.test_client()
    assert done.get(f"/s/{slug}").status_code == 302
    assert Respondent(done).complete(catalog).status_code == 302
    draft = app.test_client()
    draft.get(f"/s/{slug}")
    Respondent(draft).consent()
    app.test_client().get(f"/s/{slug}")  # opened only
    with app.app_context():
        channel_id = db.session.scalar(select(Channel.id).filter_by(slug=slug))
        statuses = db.session.scalars(
            select(Response.status).where(Response.channel_id == channel_id)
        ).all()
    assert sorted(statuses) == ["draft", "submitted"]
    page = owner.get("/researcher/waves/w")
    row = re.search(r'<th scope="row">linkedin</th>.*?</tr>', page.text, re.S).group(0)
    numbers = re.findall(r'<td class="num">([^<]*)</td>', row)
    assert numbers[:4] == ["3", "2", "1", "50.0%"]  # opened, started, completed, rate
