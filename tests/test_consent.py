"""The consent page: configured texts in both languages, the 18+ box, the stored version."""

from __future__ import annotations

import logging

import pytest
import yaml
from sqlalchemy import func, select

from survey import create_app
from survey.consent import ConsentError, load_consent
from survey.extensions import db
from survey.models import Response
from tests.conftest import TEST_SECRET, app_config
from tests.helpers import csrf_token

CONFIGURED = {
    "version": "2026-12-v1",
    "researchers": {"ru": "Лаборатория мотивации, И. Иванова", "en": "Motivation Lab, I. Ivanova"},
    "contact": {"ru": "survey@example.org", "en": "survey@example.org"},
    "ethics": {
        "ru": "Этический комитет не рассматривал это исследование.",
        "en": "No ethics committee has reviewed this study.",
    },
    "retention": {
        "ru": "Ответы хранятся до конца 2028 года.",
        "en": "Answers are kept until 2028.",
    },
    "withdrawal": {"ru": "Выгрузки отозвать нельзя.", "en": "Exports cannot be recalled."},
}


def write(tmp_path, data) -> str:
    path = tmp_path / "consent.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return str(path)


def responses_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Response))


@pytest.mark.parametrize(
    ("lang", "message"),
    [
        ("ru", "Опрос только для людей в возрасте 18 лет и старше."),
        ("en", "The survey is only for people aged 18 or older."),
    ],
)
def test_consent_requires_the_18_or_over_box_in_both_languages(app, client, lang, message):
    if lang == "en":
        client.get("/lang/en?next=/")
    page = client.get("/")
    assert 'name="adult"' in page.text and 'name="agree"' in page.text
    r = client.post("/", data={"csrf_token": csrf_token(page.text), "agree": "y"})
    assert r.status_code == 200 and message in r.text
    assert 'id="adult-error"' in r.text
    assert responses_count(app) == 0
    r = client.post("/", data={"csrf_token": csrf_token(page.text), "adult": "y"})
    assert r.status_code == 200 and responses_count(app) == 0
    r = client.post("/", data={"csrf_token": csrf_token(page.text), "adult": "y", "agree": "y"})
    assert r.status_code == 302 and responses_count(app) == 1


def test_the_configured_texts_are_shown_and_their_version_is_stored(database_url, tmp_path, caplog):
    path = write(tmp_path, CONFIGURED)
    with caplog.at_level(logging.WARNING):
        app = create_app(app_config(database_url, str(tmp_path / "instance"), CONSENT_PATH=path))
    assert "placeholder" not in caplog.text  # no warning: the texts are configured
    try:
        client = app.test_client()
        page = client.get("/").text
        for key in ("researchers", "ethics", "retention", "withdrawal"):
            assert CONFIGURED[key]["ru"] in page
        assert CONFIGURED["contact"]["ru"] in page
        english = client.get("/?lang=en").text
        assert CONFIGURED["researchers"]["en"] in english
        assert CONFIGURED["ethics"]["en"] in english
        data = {"csrf_token": csrf_token(page), "adult": "y", "agree": "y"}
        assert client.post("/", data=data).status_code == 302
        with app.app_context():
            stored = db.session.scalar(select(Response.consent_version))
        assert stored == "2026-12-v1"
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def test_the_default_placeholder_texts_are_honest_and_warn_at_start(database_url, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        app = create_app(app_config(database_url, str(tmp_path / "instance")))
    try:
        assert "DEFAULT placeholder texts" in caplog.text
        consent = app.extensions["survey_consent"]
        assert consent.placeholder and consent.version == "unconfigured"
        for text in (consent.researchers, consent.contact, consent.ethics, consent.retention):
            assert "NOT CONFIGURED" in text.en and "НЕ НАСТРОЕНО" in text.ru
        page = app.test_client().get("/").text
        assert "НЕ НАСТРОЕНО" in page  # respondents see that nothing was configured
    finally:
        with app.app_context():
            db.engine.dispose()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": "x" * 17}, "version"),
        ({"ethics": {"ru": "Одобрено"}}, "ethics"),
        ({"contact": {"ru": "НЕ НАСТРОЕНО: нет", "en": "a@b.org"}}, "placeholder"),
        ({"extra": 1}, "unknown key"),
        ({"placeholder": "yes"}, "placeholder"),
    ],
)
def test_an_invalid_consent_file_is_refused_naming_the_problem(tmp_path, change, message):
    path = write(tmp_path, {**CONFIGURED, **change})
    with pytest.raises(ConsentError, match=message):
        load_consent(path)


def test_a_missing_text_is_refused(tmp_path):
    data = {k: v for k, v in CONFIGURED.items() if k != "retention"}
    with pytest.raises(ConsentError, match="retention"):
        load_consent(write(tmp_path, data))


def test_an_invalid_consent_file_stops_the_app(tmp_path):
    path = write(tmp_path, {**CONFIGURED, "version": ""})
    with pytest.raises(ConsentError):
        create_app(
            {
                "TESTING": True,
                "SECRET_KEY": TEST_SECRET,
                "INSTANCE_PATH": str(tmp_path / "instance"),
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.db'}",
                "CONSENT_PATH": path,
            }
        )
