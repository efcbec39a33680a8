"""Background jobs: an export or a report too long for one request, computed beside it.

gunicorn's sync workers kill a request after 30 seconds. An export of a large study or the
HTML report over a huge one can take longer, so above a size (``EXPORT_SYNC_LIMIT``,
``REPORT_SYNC_LIMIT`` responses) the request creates a :class:`~survey.models.Job` row,
starts a thread in the worker process that handled it, and answers at once: a browser is
sent to the job's page (it refreshes itself, no JavaScript needed), an API client gets 202
and the job's URL. The state lives in the database, so any worker can show it::

    queued -> running -> done (the file, until it expires)
                      -> failed (why, in ``error`` and ``message``)

Beside the work, a second thread writes a heartbeat with the latest progress every
``JOB_HEARTBEAT_SECONDS`` through its own connection. A job whose heartbeat is older than
``JOB_STALE_SECONDS`` died with its worker (a restart, a crash, a deploy): whoever looks at
it next marks it failed (``worker_lost``), and its owner can start it again. A result file
(under ``<instance>/jobs/``) is deleted ``JOB_RESULT_HOURS`` after its job ended, with the
row; expired jobs are purged whenever a job is started or looked at.

Deliberately small: no queue server, no automatic retry, a job never moves to another
worker. At most ``JOB_THREADS`` jobs run at once in one worker process; more wait, queued
and with a heartbeat. ``JOBS_INLINE`` runs a job inside the request that starts it (tests,
debugging). A job computes exactly what the synchronous route would: the same
:class:`survey.export.Export` with the same options, the same report.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import inspect
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from flask import abort, current_app, send_file, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.datastructures import MultiDict

from survey.auth import current_researcher
from survey.extensions import db
from survey.fieldwork import today, utcnow  # naive UTC, as the job table stores times
from survey.i18n import current_language
from survey.lazy import LazyModule
from survey.models import Job, Researcher

anonymize = LazyModule("survey.anonymize")
export = LazyModule("survey.export")
queries = LazyModule("survey.queries")
results = LazyModule("survey.results")

log = logging.getLogger(__name__)

FOLDER = "jobs"  # under the instance folder
ACTIVE = ("queued", "running")
REFRESH_SECONDS = 3  # how often a job's page reloads itself while the job runs
Progress = Callable[[float], None]

_threads: dict[str, threading.Thread] = {}
_threads_lock = threading.Lock()


class JobLost(Exception):
    """The job was marked failed while this thread still ran it (its heartbeat was late):
    the work stops and its result is thrown away."""


class Withheld(Exception):
    """The disclosure gate withholds the report's segment; ``result`` says why."""

    def __init__(self, result):
        super().__init__(result.verdict.message())
        self.result = result


def _seconds(name: str) -> dt.timedelta:
    return dt.timedelta(seconds=float(current_app.config[name]))


def _ttl() -> dt.timedelta:
    return dt.timedelta(hours=float(current_app.config["JOB_RESULT_HOURS"]))


def folder(app=None) -> Path:
    """The folder of result files, private like the instance folder (created on demand)."""
    path = Path((app or current_app).instance_path) / FOLDER
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


# -- starting ----------------------------------------------------------------------------------
def export_request(args, name: str | None = None):
    """The options and the file of an export request, checked exactly as the synchronous
    download checks them (raises :class:`survey.export.ExportRequestError`)."""
    from survey.export.options import requested_file

    options = export.ExportOptions.from_mapping(args)
    return options, requested_file(args, name, options)


def _sync_limit(options, file: str) -> str:
    """The setting that bounds a synchronous export: SPSS and Stata files are written cell
    by cell (pyreadstat), about ten times slower than the CSV."""
    from survey.export.files import BY_NAME

    labelled = options.formats or (file in BY_NAME and BY_NAME[file].format != "csv")
    return "EXPORT_SYNC_LIMIT_LABELLED" if labelled else "EXPORT_SYNC_LIMIT"


def start_export_if_large(args, name: str | None = None) -> Job | None:
    """A job for an export of more than ``EXPORT_SYNC_LIMIT`` responses (with a labelled
    format, ``EXPORT_SYNC_LIMIT_LABELLED``), else None (the caller answers synchronously).
    A bad request raises as the download would."""
    options, file = export_request(args, name)
    size = queries.count_respondents(
        queries.Segment(include_demo=options.include_demo, include_pilot=options.include_pilot)
    )
    if size <= current_app.config[_sync_limit(options, file)]:
        return None
    pairs = [[key, value] for key, value in args.items(multi=True) if key != "lang"]
    return start("export", {"args": pairs, "file": file})


def start_report_if_large(segment) -> Job | None:
    """A job for the HTML report of a segment of more than ``REPORT_SYNC_LIMIT``
    responses, else None."""
    if queries.count_respondents(segment) <= current_app.config["REPORT_SYNC_LIMIT"]:
        return None
    return start("report", {"segment": asdict(segment)})


def start(kind: str, parameters: dict, researcher: Researcher | None = None) -> Job:
    """Create a job for the signed-in researcher and start it; the same job again (same
    kind, parameters and language) while it is still queued or running is not started a
    second time: that one is returned."""
    researcher = researcher or current_researcher()
    purge_expired()
    parameters = {**parameters, "lang": current_language()}
    active = db.session.scalars(
        select(Job).where(Job.owner_id == researcher.id, Job.kind == kind, Job.status.in_(ACTIVE))
    ).all()
    for twin in active:
        if twin.parameters == parameters and not _mark_if_stale(twin):
            return twin
    now = utcnow()
    job = Job(
        kind=kind,
        parameters=parameters,
        owner_id=researcher.id,
        status="queued",
        progress=0.0,
        created_at=now,
        heartbeat_at=now,
        expires_at=now + _ttl(),
    )
    db.session.add(job)
    db.session.commit()
    launch(job.id)
    db.session.expire(job)  # a job run inline has moved on
    return job


def retryable(job: Job) -> bool:
    """Starting the job again may help: its worker stopped, an unexpected error, or its file
    is gone (a refused export or a withheld report would only be refused again)."""
    if job.status == "done":
        return not available(job)
    return job.status == "failed" and job.error in ("worker_lost", "internal")


def restart(job: Job) -> Job:
    """A job that :func:`retryable` allows, started again as a new job with the same
    parameters; the old one stays until it expires. Any other job is returned as is."""
    if not retryable(job):
        return job
    parameters = {key: value for key, value in job.parameters.items() if key != "lang"}
    return start(job.kind, parameters)


def launch(job_id: str) -> None:
    """Run a job in a new thread of this process (or here and now with ``JOBS_INLINE``)."""
    app = current_app._get_current_object()
    if app.config["JOBS_INLINE"]:
        run(app, job_id)
        return
    thread = threading.Thread(target=run, args=(app, job_id), name=f"job-{job_id[:8]}")
    thread.daemon = True  # a job dies with its worker; its page then says so
    with _threads_lock:
        for done in [key for key, t in _threads.items() if not t.is_alive()]:
            del _threads[done]
        _threads[job_id] = thread
    thread.start()


def join(job_id: str, timeout: float | None = None) -> bool:
    """Wait for the thread running a job in this process; True once it has ended."""
    with _threads_lock:
        thread = _threads.get(job_id)
    if thread is None:
        return True
    thread.join(timeout)
    return not thread.is_alive()


# -- running -----------------------------------------------------------------------------------
class Heartbeat:
    """Writes a job's heartbeat and latest progress every few seconds from its own thread
    and connection, so the work never waits for the database to report progress.

    :meth:`report` is the work's progress callback; it raises :class:`JobLost` once the job
    has been taken from this thread (marked failed because a heartbeat came too late).
    """

    def __init__(self, engine, job_id: str, interval: float):
        self.engine = engine
        self.job_id = job_id
        self.interval = interval
        self.progress = 0.0
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"beat-{job_id[:8]}")
        self._thread.daemon = True

    def start(self) -> None:
        """Start beating from the background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop beating and wait for the thread to end."""
        self._stop.set()
        self._thread.join()

    def report(self, fraction: float) -> None:
        """Progress from 0 to 1; never goes back."""
        if self.lost:
            raise JobLost(self.job_id)
        self.progress = min(1.0, max(self.progress, float(fraction)))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()

    def beat(self) -> None:
        """One heartbeat: the time and the progress, for a job still queued or running."""
        table = Job.__table__
        try:
            with self.engine.begin() as conn:
                found = conn.execute(
                    update(table)
                    .where(table.c.id == self.job_id, table.c.status.in_(ACTIVE))
                    .values(heartbeat_at=utcnow(), progress=self.progress)
                ).rowcount
        except SQLAlchemyError as exc:  # the database is briefly away: try again next time
            log.warning("job heartbeat not written: %s", exc)
            return
        if not found:
            self.lost = True


def run(app, job_id: str) -> None:
    """Run one job to its end (done or failed), in an application context of its own."""
    with app.app_context():
        beat = Heartbeat(db.engine, job_id, float(app.config["JOB_HEARTBEAT_SECONDS"]))
        beat.start()
        try:
            with _slots(app):  # at most JOB_THREADS jobs at once in this process
                if _claim(job_id):
                    _work(app, job_id, beat)
        except Exception:  # never let a job's thread die silently
            log.exception("job %s stopped", job_id)
            with contextlib.suppress(SQLAlchemyError):  # else its heartbeat will tell
                _end(job_id, "failed", error="internal")
        finally:
            beat.stop()
            db.session.remove()


def _slots(app) -> threading.BoundedSemaphore:
    with _threads_lock:
        return app.extensions.setdefault(
            "survey_job_slots", threading.BoundedSemaphore(int(app.config["JOB_THREADS"]))
        )


def _claim(job_id: str) -> bool:
    """queued -> running, once: False when another thread has it or it already ended."""
    now = utcnow()
    claimed = db.session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "queued")
        .values(status="running", started_at=now, heartbeat_at=now)
    ).rowcount
    db.session.commit()
    return bool(claimed)


def _work(app, job_id: str, beat: Heartbeat) -> None:
    job = db.session.get(Job, job_id)
    part = folder(app) / f"{job_id}.part"
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fileobj, force_locale(job.parameters["lang"]):
            suffix, download_name, mimetype = WORK[job.kind](job.parameters, beat.report, fileobj)
    except JobLost:
        part.unlink(missing_ok=True)
        return
    except Exception as exc:  # noqa: BLE001 - every failure becomes the job's state
        part.unlink(missing_ok=True)
        error, message = _failure(exc)
        if error == "internal":
            log.exception("job %s (%s) failed", job_id, job.kind)
        _end(job_id, "failed", error=error, message=message)
        return
    result = part.with_suffix(suffix)
    try:
        os.replace(part, result)
    except FileNotFoundError:  # marked failed meanwhile, and its partial file removed
        return
    ended = _end(
        job_id,
        "done",
        result_path=f"{FOLDER}/{result.name}",
        download_name=download_name,
        mimetype=mimetype,
    )
    if not ended:  # marked failed meanwhile: nobody will ask for this file
        result.unlink(missing_ok=True)


def _failure(exc: Exception) -> tuple[str, str | None]:
    """The job's error code and message for what the work raised."""
    if isinstance(exc, export.ExportRequestError):
        return "bad_request", str(exc)
    if isinstance(exc, anonymize.ExportRefused):
        return "export_refused", str(exc)
    if isinstance(exc, Withheld):
        return "withheld", str(exc)
    return "internal", None


def _end(job_id: str, status: str, **values) -> bool:
    """Move a queued or running job to ``status`` (done or failed), once."""
    now = utcnow()
    with db.engine.begin() as conn:
        table = Job.__table__
        return bool(
            conn.execute(
                update(table)
                .where(table.c.id == job_id, table.c.status.in_(ACTIVE))
                .values(
                    status=status,
                    progress=1.0 if status == "done" else table.c.progress,
                    finished_at=now,
                    heartbeat_at=now,
                    expires_at=now + _ttl(),
                    **values,
                )
            ).rowcount
        )


# -- the kinds of job --------------------------------------------------------------------------
def _export(parameters: dict, progress: Progress, fileobj) -> tuple[str, str, str]:
    """The export a job was asked for, written to ``fileobj`` exactly as the synchronous
    download writes it: the zip, or one file."""
    from survey.export.files import BY_NAME

    options = export.ExportOptions.from_mapping(MultiDict(parameters["args"]))
    name = parameters["file"]
    made = export.Export(options)
    progress(0.05)  # the disclosure plan is made

    def share(fraction: float) -> None:
        progress(0.05 + 0.95 * fraction)

    if name == "zip":
        stamp = made.download_stem
        _with_progress(made.zip_to, share)(fileobj)
        return ".zip", f"{stamp}.zip", "application/zip"
    records = max(made.records, 1)
    chunks = _with_progress(made.csv_chunks, lambda done: share(min(done / records, 1.0)))
    for chunk in chunks(name):
        fileobj.write(chunk)
        progress(0.05)  # never moves progress back; lets a lost job stop between chunks
    file = BY_NAME[name]
    return f".{file.extension}", file.label, file.mimetype


def _with_progress(method, callback):
    """``method`` with ``progress=callback`` when it takes that keyword (the export's
    writers do); without it the job's progress jumps from 5 % to 100 % at the end."""
    if "progress" in inspect.signature(method).parameters:
        return lambda *args: method(*args, progress=callback)
    return method


def report_html(segment, lang: str, progress: Progress | None = None) -> tuple[str, str]:
    """The self-contained HTML report of a segment and its file name, as the ``report``
    command writes it. Raises :class:`Withheld` when the disclosure gate withholds it."""
    from analysis.report import render_report

    progress = progress or (lambda fraction: None)
    result = results.comparison(segment)
    if result.suppressed:
        raise Withheld(result)
    progress(0.6)
    html = render_report(
        result.table,
        results.practice_labels(lang),
        lang=lang,
        sample=results.sample_description(result, lang),
        assumptions=results.assumptions(lang),
        category_table=result.category_table,
        category_labels=results.category_labels(lang),
        demo=result.demo,
        filters=result.filters,
        generated_on=today(),
        pilot=result.pilot,
        scale=results.rating_labels(lang),
    )
    progress(0.95)
    return html, f"{'demo-' if result.demo else ''}survey-report-{lang}.html"


def _report(parameters: dict, progress: Progress, fileobj) -> tuple[str, str, str]:
    segment = queries.Segment(**parameters["segment"])
    html, name = report_html(segment, parameters["lang"], progress)
    fileobj.write(html.encode("utf-8"))
    return ".html", name, "text/html; charset=utf-8"


WORK: dict[str, Callable[[dict, Progress, object], tuple[str, str, str]]] = {
    "export": _export,
    "report": _report,
}


# -- looking at a job --------------------------------------------------------------------------
def owned(job_id: str) -> Job | None:
    """The job if the signed-in researcher started it and it has not expired, else None:
    another researcher's job and one that never existed look the same (a 404)."""
    researcher = current_researcher()
    if researcher is None or len(job_id) > 64:
        return None
    purge_expired()
    job = db.session.scalar(
        select(Job).where(
            Job.id == job_id, Job.owner_id == researcher.id, Job.expires_at > utcnow()
        )
    )
    if job is not None and _mark_if_stale(job):
        db.session.refresh(job)
    return job


def owned_or_404(job_id: str) -> Job:
    """:func:`owned`, or a 404."""
    job = owned(job_id)
    if job is None:
        abort(404)
    return job


def _mark_if_stale(job: Job) -> bool:
    """A queued or running job without a recent heartbeat died with its worker: mark it
    failed (``worker_lost``). True when this call marked it."""
    if job.status not in ACTIVE:
        return False
    now = utcnow()
    marked = db.session.execute(
        update(Job)
        .where(
            Job.id == job.id,
            Job.status.in_(ACTIVE),
            Job.heartbeat_at < now - _seconds("JOB_STALE_SECONDS"),
        )
        .values(status="failed", error="worker_lost", finished_at=now, expires_at=now + _ttl())
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if marked:  # what the dead worker had written so far (if it wrote here) is of no use
        (folder() / f"{job.id}.part").unlink(missing_ok=True)
    return bool(marked)


def result_file(job: Job) -> Path | None:
    """The result file of a finished job, if it is still on this server's disk."""
    if job.status != "done" or not job.result_path:
        return None
    base = folder()
    path = (base / Path(job.result_path).name).resolve()
    return path if path.parent == base.resolve() and path.is_file() else None


def available(job: Job) -> bool:
    """The job is done and its file can be downloaded here."""
    return result_file(job) is not None


def send_result(job: Job):
    """The job's file as a download (``available(job)`` must hold)."""
    path = result_file(job)
    if path is None:
        abort(404)
    return send_file(
        path,
        mimetype=job.mimetype,
        as_attachment=True,
        download_name=job.download_name,
        max_age=0,
    )


def message(job: Job) -> str | None:
    """Why a job failed, in the current language (None when it did not)."""
    if job.status == "done" and not available(job):
        return _(
            "The file of this job is no longer on this server (it was deleted, or another "
            "server ran the job). Start the job again."
        )
    if job.status != "failed":
        return None
    if job.error == "worker_lost":
        return _(
            "The server process that ran this job stopped (a restart, a deployment or a "
            "crash) before the job finished. Start it again."
        )
    if job.error == "internal" or not job.message:
        return _(
            "The job failed because of an error on the server. Start it again; if it fails "
            "again, tell the administrator."
        )
    return job.message


def pending_message() -> str:
    """What the API says when a job's file is asked for before the job is done."""
    return _("The job has not finished yet: ask for its status at its URL until it is done.")


def view(job: Job) -> dict:
    """What the job's page shows beside the job itself."""
    titles = {"export": _("Anonymized export"), "report": _("Report")}
    states = {
        "queued": _("Waiting to start"),
        "running": _("In progress"),
        "done": _("Ready"),
        "failed": _("Failed"),
    }
    return {
        "title": titles[job.kind],
        "state": states[job.status],
        "active": job.status in ACTIVE,
        "percent": int(job.progress * 100),
        "refresh": REFRESH_SECONDS,
        "ready": available(job),
        "problem": message(job),
        "retry": retryable(job),
        "expires": job.expires_at.strftime("%Y-%m-%d %H:%M"),
    }


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds") + "Z"


def as_json(job: Job) -> dict:
    """A job for the API: status, progress, why it failed, its file's URL once done."""
    ready = available(job)
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "progress": round(job.progress, 3),
        "error": job.error if job.status == "failed" else None,
        "message": message(job),
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "expires_at": _iso(job.expires_at),
        "url": url_for("api.job", job_id=job.id),
        "file_url": url_for("api.job_file", job_id=job.id) if ready else None,
        "download_name": job.download_name if ready else None,
    }


# -- expiry ------------------------------------------------------------------------------------
def purge_expired() -> int:
    """Delete expired jobs and their files, and files no job owns any more (a researcher
    deleted, a worker killed while writing); returns the number of jobs deleted.

    A job still running keeps its row: it expires once it has ended, or once its
    heartbeat has stopped for good."""
    now = utcnow()
    expired = db.session.scalars(
        select(Job.id).where(
            Job.expires_at < now,
            or_(
                Job.status.not_in(ACTIVE),
                Job.heartbeat_at < now - _seconds("JOB_STALE_SECONDS"),
            ),
        )
    ).all()
    base = folder()
    if expired:
        db.session.execute(delete(Job).where(Job.id.in_(expired)))
        db.session.commit()
        for job_id in expired:
            for path in base.glob(f"{job_id}.*"):
                path.unlink(missing_ok=True)
    _sweep_orphans(base, now)
    return len(expired)


def _sweep_orphans(base: Path, now: dt.datetime) -> None:
    """Remove result files of jobs that no longer exist (older than the stale limit, so a
    job being created in another worker at this moment is never touched)."""
    files = [path for path in base.iterdir() if path.is_file()]
    if not files:
        return
    known = set(db.session.scalars(select(Job.id)))
    oldest = (now - _seconds("JOB_STALE_SECONDS")).replace(tzinfo=dt.UTC).timestamp()
    for path in files:
        if path.name.split(".", 1)[0] not in known and path.stat().st_mtime < oldest:
            path.unlink(missing_ok=True)
