"""Background jobs (issue 14): an export or report over a large study is prepared beside the
request, which answers at once; the file equals the synchronous one; failures, a dead
worker, other researchers and expiry are handled without a 500.

Most tests run a job inline (``JOBS_INLINE``: inside the request that starts it); one runs
the real thread and watches its progress move.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import threading
import time
import zipfile

import pytest
from sqlalchemy import select, update
from werkzeug.http import parse_options_header

from survey import jobs
from survey.demo import seed_demo
from survey.export import Export
from survey.extensions import db
from survey.models import Job
from tests.helpers import bearer, fetch, log_in, researcher

DOWNLOAD = "/researcher/export/download"
REPORT = "/researcher/report"
API = "/api/v1/export"
JOB_PAGE = re.compile(r"^/researcher/jobs/([A-Za-z0-9_-]{32})$")
# The failure texts as the Russian interface shows them (written out, not imported).
WORKER_LOST_RU = "Серверный процесс, выполнявший эту задачу, остановился"
FAILED_RU = "Задача не выполнена из-за ошибки на сервере"
START_AGAIN_RU = "Запустить снова"


# -- helpers ---------------------------------------------------------------------------------
def sign_in(app, client) -> int:
    """A new researcher logged in through the form; returns their id."""
    who = researcher(app)
    log_in(app, client, who.email)
    return who.id


def form_token(html: str) -> str:
    """The CSRF token of any form on a page (the logout form of every dashboard page)."""
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1)


def filename(r) -> str:
    """The download name a response gives (quoted or not)."""
    kind, options = parse_options_header(r.headers["Content-Disposition"])
    assert kind == "attachment"
    return options["filename"]


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def study(app, n: int = 40, *, refusable: bool = False) -> None:
    """``n`` demo respondents; a tiny study exports only if suppression may be heavy."""
    with app.app_context():
        seed_demo(app.extensions["survey_catalog"], n, 3)
    if not refusable:
        app.config["EXPORT_MAX_SUPPRESSED_SHARE"] = 1.0


def job_id_of(r) -> str:
    """The id of the job a download was turned into (303 to the job's page)."""
    assert r.status_code == 303, (r.status_code, r.get_data(as_text=True)[:300])
    match = JOB_PAGE.match(r.location)
    assert match, r.location
    return match.group(1)


def stored(app, job_id: str) -> Job:
    with app.app_context():
        job = db.session.get(Job, job_id)
        db.session.expunge(job)
        return job


def wait_until(condition, what: str, seconds: float = 60):
    """Poll until ``condition()`` is true (a deadline against hanging, not a timing test)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"gave up waiting for {what}")


@pytest.fixture
def inline(app):
    """Jobs run inside the request that starts them; exports above 10 responses are jobs."""
    app.config.update(JOBS_INLINE=True, EXPORT_SYNC_LIMIT=10, REPORT_SYNC_LIMIT=10)
    return app


def synchronous(app, client, path: str, **kwargs):
    """The same request answered without a job (limits raised for this one request)."""
    saved = app.config["EXPORT_SYNC_LIMIT"], app.config["REPORT_SYNC_LIMIT"]
    app.config.update(EXPORT_SYNC_LIMIT=10**9, REPORT_SYNC_LIMIT=10**9)
    try:
        r = fetch(client, path, **kwargs)
    finally:
        app.config["EXPORT_SYNC_LIMIT"], app.config["REPORT_SYNC_LIMIT"] = saved
    assert r.status_code == 200, (path, r.status_code, r.get_data(as_text=True)[:300])
    return r


# -- the export through a job ------------------------------------------------------------------
@pytest.mark.parametrize(
    "query",
    [
        {"file": "zip"},
        {"file": "zip", "format": "excel", "k": "6", "include_demo": "1"},
        {"file": "answers_long", "format": "excel"},
        {"file": "disclosure_report"},
    ],
)
def test_a_large_export_is_a_job_whose_file_equals_the_synchronous_one(inline, client, query):
    app = inline
    study(app)
    sign_in(app, client)
    expected = synchronous(app, client, DOWNLOAD, query_string=query)

    job_id = job_id_of(client.get(DOWNLOAD, query_string=query))
    page = fetch(client, f"/researcher/jobs/{job_id}")
    assert page.status_code == 200
    assert 'http-equiv="refresh"' not in page.text  # done: no more reloading
    assert f"/researcher/jobs/{job_id}/file" in page.text
    got = fetch(client, f"/researcher/jobs/{job_id}/file")
    assert got.status_code == 200 and got.mimetype == expected.mimetype
    assert filename(got) == filename(expected)
    assert got.headers["Cache-Control"] == "no-store"
    if query["file"] == "zip":
        files = unzip(got.data)
        assert files == unzip(expected.data)  # file by file, byte for byte
        assert len(files) >= 5
    else:
        assert got.data == expected.data

    job = stored(app, job_id)
    assert (job.status, job.progress, job.error) == ("done", 1.0, None)
    assert job.started_at <= job.finished_at < job.expires_at
    result = os.path.join(app.instance_path, job.result_path)
    assert os.stat(result).st_mode & 0o777 == 0o600  # private, like the database


def test_a_small_export_is_still_answered_at_once(inline, client):
    study(inline, 8)
    sign_in(inline, client)
    r = fetch(client, DOWNLOAD, query_string={"file": "codebook"})
    assert r.status_code == 200 and r.mimetype.startswith("text/csv")
    with inline.app_context():
        assert db.session.scalar(select(Job.id)) is None


def test_the_api_answers_202_then_the_job_then_the_file(inline, client):
    app = inline
    study(app)
    headers = bearer(app, sign_in(app, app.test_client()))
    expected = synchronous(app, client, f"{API}/zip", headers=headers)

    r = fetch(client, f"{API}/zip", headers=headers)
    assert r.status_code == 202 and r.mimetype == "application/json"
    body = r.get_json()
    assert r.headers["Location"] == body["url"] == f"/api/v1/jobs/{body['id']}"
    status = fetch(client, body["url"], headers=headers).get_json()
    assert status["status"] == "done" and status["progress"] == 1.0
    assert status["error"] is None and status["message"] is None
    assert status["file_url"] == f"/api/v1/jobs/{body['id']}/file"
    got = fetch(client, status["file_url"], headers=headers)
    assert got.status_code == 200 and got.mimetype == "application/zip"
    assert unzip(got.data) == unzip(expected.data)


def test_a_bad_export_request_is_refused_at_once_not_made_a_job(inline, client):
    study(inline)
    headers = bearer(inline, sign_in(inline, client))
    r = fetch(client, DOWNLOAD, query_string={"file": "zip", "k": "1"})
    assert r.status_code == 400
    r = fetch(client, f"{API}/zip", headers=headers, query_string={"include_examples": "1"})
    assert r.status_code == 400 and r.get_json()["error"] == "bad_request"
    with inline.app_context():
        assert db.session.scalar(select(Job.id)) is None


# -- the real thread -------------------------------------------------------------------------
def test_a_real_thread_runs_the_job_and_its_progress_moves_to_done(app, client, monkeypatch):
    study(app)
    app.config.update(EXPORT_SYNC_LIMIT=10, JOB_HEARTBEAT_SECONDS=0.05)
    headers = bearer(app, sign_in(app, client))
    expected = synchronous(app, client, DOWNLOAD, query_string={"file": "zip"})

    halfway, go_on = threading.Event(), threading.Event()
    real_zip_to = Export.zip_to

    def held_zip_to(self, fileobj, progress=None):
        """Reports half the work done, then waits for the test before writing the zip."""
        progress(0.5)
        halfway.set()
        assert go_on.wait(60)
        real_zip_to(self, fileobj)

    monkeypatch.setattr(Export, "zip_to", held_zip_to)
    job_id = job_id_of(client.get(DOWNLOAD, query_string={"file": "zip"}))
    try:
        assert halfway.wait(60)
        url = f"/api/v1/jobs/{job_id}"
        # 5 % once the disclosure plan is made, then half of the remaining 95 %.
        running = wait_until(
            lambda: (s := fetch(client, url, headers=headers).get_json())["progress"] > 0.5 and s,
            "the heartbeat to report the progress",
        )
        assert running["status"] == "running" and running["progress"] == 0.525
        assert running["file_url"] is None
        page = fetch(client, f"/researcher/jobs/{job_id}")
        assert page.status_code == 200
        assert '<meta http-equiv="refresh" content="3">' in page.text
        assert "52 %" in page.text and 'value="52"' in page.text
        # Not ready yet: the browser goes back to the job's page, the API gets a 409.
        early = fetch(client, f"/researcher/jobs/{job_id}/file")
        assert early.status_code == 302 and early.location.endswith(f"/researcher/jobs/{job_id}")
        early = fetch(client, f"{url}/file", headers=headers)
        assert early.status_code == 409 and early.get_json()["job"]["status"] == "running"
        # The same request again while it runs joins the running job.
        assert job_id_of(client.get(DOWNLOAD, query_string={"file": "zip"})) == job_id
    finally:
        go_on.set()
        assert jobs.join(job_id, 60)

    done = fetch(client, f"/api/v1/jobs/{job_id}", headers=headers).get_json()
    assert (done["status"], done["progress"]) == ("done", 1.0)
    got = fetch(client, f"/researcher/jobs/{job_id}/file")
    assert unzip(got.data) == unzip(expected.data)


# -- failures ----------------------------------------------------------------------------------
def test_a_failing_job_shows_failed_with_a_message_never_a_500(inline, client, monkeypatch):
    app = inline
    study(app)
    headers = bearer(app, sign_in(app, client))

    def broken_zip_to(self, fileobj, progress=None):
        raise RuntimeError("disk on fire at /secret/path")

    monkeypatch.setattr(Export, "zip_to", broken_zip_to)
    job_id = job_id_of(client.get(DOWNLOAD, query_string={"file": "zip"}))
    page = fetch(client, f"/researcher/jobs/{job_id}")
    assert page.status_code == 200
    assert FAILED_RU in page.text and START_AGAIN_RU in page.text
    assert "/secret/path" not in page.text and 'http-equiv="refresh"' not in page.text
    status = fetch(client, f"/api/v1/jobs/{job_id}", headers=headers)
    assert status.status_code == 200
    body = status.get_json()
    assert (body["status"], body["error"], body["file_url"]) == ("failed", "internal", None)
    assert body["message"] and "/secret/path" not in body["message"]
    r = fetch(client, f"/api/v1/jobs/{job_id}/file", headers=headers)
    assert r.status_code == 409 and r.get_json()["message"] == body["message"]
    assert fetch(client, f"/researcher/jobs/{job_id}/file").status_code == 302
    assert os.listdir(os.path.join(app.instance_path, "jobs")) == []  # no partial file left

    # Started again once the cause is gone: a new job, which succeeds.
    monkeypatch.undo()
    again = client.post(
        f"/researcher/jobs/{job_id}/restart", data={"csrf_token": form_token(page.text)}
    )
    new_id = job_id_of(again)
    assert new_id != job_id and stored(app, new_id).status == "done"


def test_a_refused_export_job_says_why_like_the_synchronous_refusal(inline, client):
    app = inline
    study(app, refusable=True)  # 40 varied respondents cannot reach k = 5 within 10 %
    headers = bearer(app, sign_in(app, client))
    app.config["EXPORT_SYNC_LIMIT"] = 10**9
    refused = fetch(client, f"{API}/zip", headers=headers)
    assert refused.status_code == 409
    app.config["EXPORT_SYNC_LIMIT"] = 10

    body = fetch(client, f"{API}/zip", headers=headers).get_json()
    status = fetch(client, body["url"], headers=headers).get_json()
    assert (status["status"], status["error"]) == ("failed", "export_refused")
    assert status["message"] == refused.get_json()["message"]
    page = fetch(client, f"/researcher/jobs/{body['id']}")
    assert page.status_code == 200 and "5-anonymity would suppress" in page.text
    assert START_AGAIN_RU not in page.text  # it would only be refused again


def test_a_job_whose_worker_died_shows_failed_and_can_be_started_again(inline, client):
    app = inline
    study(app)
    owner = sign_in(app, client)
    expected = synchronous(app, client, DOWNLOAD, query_string={"file": "zip"})
    # A job left running by a worker that was killed: its heartbeat stopped long ago.
    long_ago = jobs.utcnow() - dt.timedelta(minutes=10)
    with app.app_context():
        job = Job(
            kind="export",
            parameters={"args": [["file", "zip"]], "file": "zip", "lang": "ru"},
            owner_id=owner,
            status="running",
            progress=0.3,
            created_at=long_ago,
            started_at=long_ago,
            heartbeat_at=long_ago,
            expires_at=long_ago + dt.timedelta(days=1),
        )
        db.session.add(job)
        db.session.commit()
        dead = job.id
    # What it had written before it was killed.
    partial = os.path.join(app.instance_path, "jobs", f"{dead}.part")
    os.makedirs(os.path.dirname(partial), exist_ok=True)
    with open(partial, "wb") as fh:
        fh.write(b"PK half a zip")

    page = fetch(client, f"/researcher/jobs/{dead}")
    assert page.status_code == 200
    assert WORKER_LOST_RU in page.text and START_AGAIN_RU in page.text
    assert (stored(app, dead).status, stored(app, dead).error) == ("failed", "worker_lost")
    assert not os.path.exists(partial)

    new_id = job_id_of(
        client.post(f"/researcher/jobs/{dead}/restart", data={"csrf_token": form_token(page.text)})
    )
    got = fetch(client, f"/researcher/jobs/{new_id}/file")
    assert got.status_code == 200 and unzip(got.data) == unzip(expected.data)


# -- who may see a job -------------------------------------------------------------------------
def test_only_the_researcher_who_started_a_job_can_see_or_download_it(inline):
    app = inline
    study(app)
    owner_client, other_client, anonymous = (app.test_client() for _ in range(3))
    owner = sign_in(app, owner_client)
    other = sign_in(app, other_client)
    job_id = job_id_of(owner_client.get(DOWNLOAD, query_string={"file": "zip"}))
    page = f"/researcher/jobs/{job_id}"
    api = f"/api/v1/jobs/{job_id}"

    # Its owner, by session and by token.
    assert fetch(owner_client, page).status_code == 200
    assert fetch(owner_client, f"{page}/file").status_code == 200
    assert fetch(anonymous, api, headers=bearer(app, owner)).status_code == 200

    # Another researcher: as if it did not exist.
    for path in (page, f"{page}/file"):
        r = fetch(other_client, path)
        assert r.status_code == 404 and "survey-export" not in r.get_data(as_text=True)
    form = form_token(fetch(other_client, "/researcher/export").get_data(as_text=True))
    r = other_client.post(f"{page}/restart", data={"csrf_token": form})
    assert r.status_code == 404
    other_token = bearer(app, other)
    for path in (api, f"{api}/file"):
        r = fetch(anonymous, path, headers=other_token)
        assert r.status_code == 404 and r.get_json()["error"] == "Not Found"

    # Nobody signed in: sent to log in, or a 401 for the API.
    for path in (page, f"{page}/file"):
        r = fetch(anonymous, path)
        assert r.status_code == 302 and "/researcher/login" in r.location
    for path in (api, f"{api}/file"):
        r = fetch(anonymous, path)
        assert r.status_code == 401 and b"PK" not in r.data
    assert stored(app, job_id).status == "done"  # nobody's look changed it


# -- expiry ------------------------------------------------------------------------------------
def test_expired_results_are_removed_with_their_job(inline, client):
    app = inline
    study(app)
    sign_in(app, client)
    job_id = job_id_of(client.get(DOWNLOAD, query_string={"file": "zip"}))
    folder = os.path.join(app.instance_path, "jobs")
    assert os.listdir(folder) == [f"{job_id}.zip"]
    # A file nobody owns any more (its researcher deleted), older than the stale limit.
    orphan = os.path.join(folder, "x" * 32 + ".zip")
    with open(orphan, "wb") as fh:
        fh.write(b"old")
    old = time.time() - 3600
    os.utime(orphan, (old, old))

    with app.app_context():
        db.session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(expires_at=jobs.utcnow() - dt.timedelta(seconds=1))
        )
        db.session.commit()
    assert fetch(client, f"/researcher/jobs/{job_id}").status_code == 404
    assert fetch(client, f"/researcher/jobs/{job_id}/file").status_code == 404
    assert os.listdir(folder) == []
    with app.app_context():
        assert db.session.get(Job, job_id) is None


def test_a_result_is_kept_for_the_configured_hours(inline, client):
    inline.config["JOB_RESULT_HOURS"] = 3
    study(inline)
    sign_in(inline, client)
    job = stored(inline, job_id_of(client.get(DOWNLOAD, query_string={"file": "zip"})))
    assert job.expires_at - job.finished_at == dt.timedelta(hours=3)


# -- the report --------------------------------------------------------------------------------
def test_a_large_report_is_a_job_whose_file_equals_the_synchronous_one(inline, client):
    app = inline
    study(app)
    sign_in(app, client)
    query = {"include_demo": "1", "lang": "en"}
    expected = synchronous(app, client, REPORT, query_string=query)
    assert expected.mimetype == "text/html"
    assert "attachment" in expected.headers["Content-Disposition"]
    assert b"<html" in expected.data

    job_id = job_id_of(client.get(REPORT, query_string=query))
    page = fetch(client, f"/researcher/jobs/{job_id}")
    assert page.status_code == 200 and "Download demo-survey-report-en.html" in page.text
    got = fetch(client, f"/researcher/jobs/{job_id}/file")
    assert got.status_code == 200 and got.mimetype == "text/html"
    assert filename(got) == filename(expected) == "demo-survey-report-en.html"
    assert got.data == expected.data


def test_a_withheld_report_job_fails_with_the_gates_message(inline, client):
    app = inline
    study(app)
    sign_in(app, client)
    query = {"industry": "it", "region": "moscow", "role_level": "executive"}
    withheld = synchronous(app, client, REPORT, query_string=query)
    assert withheld.mimetype == "text/html" and "attachment" not in str(withheld.headers)
    app.config["REPORT_SYNC_LIMIT"] = -1  # a job even for an empty segment
    job_id = job_id_of(client.get(REPORT, query_string=query))
    job = stored(app, job_id)
    assert (job.status, job.error) == ("failed", "withheld")
    page = fetch(client, f"/researcher/jobs/{job_id}")
    assert page.status_code == 200 and job.message in page.text
    assert job.message in withheld.get_data(as_text=True)


def test_the_comparison_page_links_to_its_report(app, client):
    study(app, 120)
    sign_in(app, client)
    for query, expected in (({}, "/researcher/report"), ({"lang": "en"}, None)):
        page = fetch(client, "/researcher/comparison", query_string=query)
        assert page.status_code == 200
        links = re.findall(r'href="(/researcher/report[^"]*)"', page.text)
        assert len(links) == 1 and (expected is None or links[0] == expected), links
    report = fetch(client, "/researcher/report")
    assert report.status_code == 200 and report.mimetype == "text/html"
    assert "attachment" in report.headers["Content-Disposition"]
