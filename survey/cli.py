"""Command line: ``flask --app survey <command>``."""

from __future__ import annotations

import os
import sys

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from flask_migrate import upgrade

from survey import fieldwork, responses
from survey.catalog import CatalogError, load_catalog
from survey.config import DEFAULT_K, DEFAULT_MAX_SUPPRESSED_SHARE


@click.command("init-db")
@with_appcontext
def init_db() -> None:
    """Apply all database migrations (safe to run again)."""
    upgrade(directory=current_app.extensions["migrate"].directory)
    click.echo(f"Database is up to date: {_safe_url()}")


@click.command("load-catalog")
@with_appcontext
@click.argument("path", required=False)
def load_catalog_command(path: str | None) -> None:
    """Validate the practice catalogue and sync it into the database."""
    path = path or current_app.config["CATALOG_PATH"]
    try:
        cat = load_catalog(path)
    except CatalogError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        version = responses.sync_catalog(cat)
    except CatalogError as exc:  # a changed wording under a stored id: nothing was written
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"Catalogue {cat.version} ({len(cat.practices)} practices, {len(cat.categories)} "
        f"categories, {len(cat.pages)} pages) loaded from {path}; version row {version.id}."
    )
    if cat.checksum != responses.catalog().checksum:
        click.echo(
            "Note: the running app serves CATALOG_PATH; set CATALOG_PATH to serve this file."
        )


@click.command("purge-drafts")
@with_appcontext
@click.option("--days", type=int, default=None, help="Override DRAFT_TTL_DAYS.")
def purge_drafts(days: int | None) -> None:
    """Delete unfinished drafts older than the time to live, and those of waves closed
    longer than WAVE_GRACE_HOURS ago (each counted as 'purged' for its channel)."""
    count = responses.purge_drafts(days)
    click.echo(f"Deleted {count} expired draft(s).")


@click.command("seed-demo")
@with_appcontext
@click.option(
    "--respondents", "-n", type=click.IntRange(1, 2_000_000), default=500, show_default=True
)
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed (reproducible).")
@click.option("--replace", is_flag=True, help="Delete earlier demo responses first.")
@click.option(
    "--correlation",
    type=click.FloatRange(-1.0, 1.0),
    default=0.6,  # survey.demo.DEFAULT_CORRELATION (not imported here: numpy loads lazily)
    show_default=True,
    help="Within-person correlation of the answers about both kinds of company "
    "(respondents who worked in both): phi of existed / did not exist, and of the ratings.",
)
def seed_demo_command(respondents: int, seed: int, replace: bool, correlation: float) -> None:
    """Create N SYNTHETIC demo respondents (marked is_demo; never mixed with real data)."""
    from survey import demo

    if replace:
        click.echo(f"Deleted {demo.delete_demo()} earlier demo response(s).")
    with click.progressbar(length=respondents, label="Seeding demo respondents") as bar:
        demo.seed_demo(
            responses.catalog(),
            respondents,
            seed,
            progress=bar.update,
            correlation=correlation,
        )
    click.echo(f"Created {respondents} synthetic demo respondents (seed {seed}).")


def segment_options(command):
    """Add one --<field> option per background question, plus --period, --wave, --channel,
    --language, --include-demo, --include-pilot."""
    from survey.questions import BACKGROUND, PERIODS

    for question in reversed(BACKGROUND):
        command = click.option(
            f"--{question.field.replace('_', '-')}",
            question.field,
            type=click.Choice(question.codes()),
            help=f"Only respondents with this {question.field}.",
        )(command)
    command = click.option(
        "--period",
        type=click.Choice(PERIODS),
        help="Each kind's answers only from respondents whose last year in it falls in this "
        "period (responses from before 2026-12 drop out).",
    )(command)
    command = click.option("--wave", help="Only this survey wave (code).")(command)
    command = click.option(
        "--channel", help="Only respondents who came through channels with this label."
    )(command)
    command = click.option("--language", type=click.Choice(["ru", "en"]))(command)
    command = click.option(
        "--include-demo", is_flag=True, help="Include demo responses beside real ones."
    )(command)
    command = click.option(
        "--include-pilot",
        is_flag=True,
        help="Include responses of pilot waves (a pilot wave named with --wave is included).",
    )(command)
    return command


@click.command("report")
@with_appcontext
@click.option(
    "--out", "out", type=click.Path(dir_okay=False), default="report.html", show_default=True
)
@click.option("--lang", type=click.Choice(["ru", "en"]), default="ru", show_default=True)
@segment_options
def report_command(out: str, lang: str, **filters) -> None:
    """Write one self-contained HTML report (works offline) of the comparison."""
    from flask_babel import force_locale

    from survey import jobs, queries, results
    from survey.queries import Segment

    if filters.get("wave") and filters["wave"] not in queries.wave_codes():
        raise click.BadParameter("no wave has this code", param_hint="--wave")
    if filters.get("channel") and filters["channel"] not in queries.channel_labels():
        raise click.BadParameter("no channel has this label", param_hint="--channel")
    segment = Segment(**{k: v for k, v in filters.items() if v})
    try:
        html, _name = jobs.report_html(segment, lang)  # the dashboard's report, too
    except jobs.Withheld as exc:
        verdict = exc.result.verdict
        with force_locale(lang):
            message = verdict.message()
        raise click.ClickException(f"Report withheld ({verdict.reason}): {message}") from None
    result = results.comparison(segment)  # the cached result the report was made from
    folder = os.path.dirname(os.path.abspath(out))
    os.makedirs(folder, exist_ok=True)
    with open(out, "w", encoding="utf-8") as fh:
        fh.write(html)
    label = " (DEMO DATA, synthetic)" if result.demo else ""
    label += " (includes PILOT responses)" if result.pilot else ""
    click.echo(f"Wrote {out}: {result.n_respondents} respondents{label}.")


@click.command("create-researcher")
@with_appcontext
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option(
    "--role",
    type=click.Choice(["owner", "analyst"]),
    default=None,
    help="owner: manages fieldwork and accounts; analyst: reads results. Default: owner for "
    "the first account, analyst for a new one after it; an existing account keeps its role.",
)
def create_researcher_command(email: str, password_stdin: bool, role: str | None) -> None:
    """Create a researcher account (or reset its password)."""
    from survey.accounts import has_researchers
    from survey.auth import create_researcher

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 10:
        raise click.ClickException("The password must have at least 10 characters.")
    if role is None and not has_researchers():
        role = "owner"  # the first account must be able to manage the others
    researcher = create_researcher(email, password, role)
    click.echo(f"Researcher {researcher.email} ({researcher.role}) is ready.")


@click.command("setup-link")
@with_appcontext
@click.option(
    "--if-none",
    is_flag=True,
    help="Print nothing (and succeed) when a researcher account exists already.",
)
def setup_link_command(if_none: bool) -> None:
    """Print a one-time link with which the first owner creates their account in the
    browser (only while no researcher account exists; earlier set-up links stop working)."""
    from survey import accounts
    from survey.links import public_url

    if accounts.has_researchers():
        if if_none:
            return
        raise click.ClickException(
            "A researcher account exists already; an owner invites others on the Team page."
        )
    token = accounts.create_setup_link()
    url = public_url("auth.setup", token=token)
    hours = current_app.config["SETUP_LINK_HOURS"]
    click.echo("No researcher account exists yet. Create the first owner account here")
    click.echo(f"(the link works once and expires in {hours} hours):")
    click.echo(f"  {url}")


@click.command("create-api-token")
@with_appcontext
@click.argument("email")
@click.option("--name", default="", help="A note to recognise the token by.")
def create_api_token_command(email: str, name: str) -> None:
    """Create an API token for a researcher and print it once (only its hash is kept)."""
    from sqlalchemy import select

    from survey.auth import create_api_token, normalise_email
    from survey.extensions import db
    from survey.models import Researcher

    researcher = db.session.scalar(select(Researcher).filter_by(email=normalise_email(email)))
    if researcher is None:
        raise click.ClickException(f"No researcher {email}; run create-researcher first.")
    token = create_api_token(researcher, name)
    click.echo(token)
    click.echo("Keep it now: it cannot be shown again.", err=True)


@click.command("revoke-api-tokens")
@with_appcontext
@click.argument("email")
def revoke_api_tokens_command(email: str) -> None:
    """Revoke every API token of a researcher."""
    from sqlalchemy import update

    from survey.auth import normalise_email
    from survey.extensions import db
    from survey.models import ApiToken, Researcher

    researcher_id = db.session.scalar(
        db.select(Researcher.id).filter_by(email=normalise_email(email))
    )
    if researcher_id is None:
        raise click.ClickException(f"No researcher {email}.")
    result = db.session.execute(
        update(ApiToken)
        .where(ApiToken.researcher_id == researcher_id, ApiToken.revoked_on.is_(None))
        .values(revoked_on=fieldwork.today())
    )
    db.session.commit()
    click.echo(f"Revoked {result.rowcount} token(s).")


@click.command("revoke-researcher")
@with_appcontext
@click.argument("email")
def revoke_researcher_command(email: str) -> None:
    """Deactivate a researcher: end every login session and revoke every API token."""
    from survey.auth import revoke_researcher

    revoked = revoke_researcher(email)
    if revoked is None:
        raise click.ClickException(f"No researcher {email}.")
    click.echo(
        f"Researcher {email} is deactivated: all sessions ended, {revoked} token(s) revoked."
    )


@click.command("export")
@with_appcontext
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--include-demo", is_flag=True, help="Include demo responses beside real ones.")
@click.option(
    "--include-pilot", is_flag=True, help="Include responses of pilot waves (marked is_pilot)."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["utf8", "excel"]),
    default="utf8",
    show_default=True,
    help="utf8: comma, no BOM; excel: UTF-8 with BOM, semicolons.",
)
@click.option(
    "--with",
    "formats",
    default="",
    metavar="sav,dta,parquet",
    help="Labelled formats written beside the CSV files: SPSS, Stata, Parquet.",
)
@click.option(
    "--lang",
    type=click.Choice(["ru", "en"]),
    default="ru",
    show_default=True,
    help="Language of the labels of the labelled formats.",
)
@click.option(
    "--k",
    type=click.IntRange(2, 50),
    default=None,
    help=f"k-anonymity (default {DEFAULT_K}; EXPORT_MIN_K)",
)
@click.option(
    "--include-examples",
    is_flag=True,
    help="Include free-text examples (scrubbed); asks for confirmation.",
)
def export_command(
    directory, include_demo, include_pilot, fmt, formats, lang, k, include_examples
) -> None:
    """Write the anonymized export (CSV files, codebook, disclosure report; with --with,
    labelled SPSS, Stata and Parquet files) into DIRECTORY."""
    from survey.anonymize import ExportRefused
    from survey.export import Export, ExportOptions, ExportRequestError, default_k, file_label
    from survey.export.options import parse_formats
    from survey.filters import BadQuery
    from survey.storage import private_opener

    try:
        formats = parse_formats(formats)
    except BadQuery as exc:
        raise click.BadParameter(exc.reason, param_hint="--with") from exc

    if include_examples:
        click.confirm("Free-text examples may contain personal details. Include them?", abort=True)
    options = ExportOptions(
        include_demo=include_demo,
        include_pilot=include_pilot,
        fmt=fmt,
        k=default_k() if k is None else k,
        include_examples=include_examples,
        max_suppressed_share=current_app.config.get(
            "EXPORT_MAX_SUPPRESSED_SHARE", DEFAULT_MAX_SUPPRESSED_SHARE
        ),
        formats=formats,
        lang=lang,
    )
    try:
        export = Export(options)
    except (ExportRefused, ExportRequestError) as exc:  # k below EXPORT_MIN_K: refused
        raise click.ClickException(str(exc)) from exc
    os.makedirs(directory, mode=0o700, exist_ok=True)
    records = export.records  # real and demo rows
    for name in export.file_names():
        path = os.path.join(directory, file_label(name))
        label = f"{file_label(name):<24}"
        with (
            open(path, "wb", opener=private_opener) as fh,
            click.progressbar(length=max(records, 1), label=label, file=sys.stderr) as bar,
        ):
            for chunk in export.csv_chunks(name):
                fh.write(chunk)
                bar.update(chunk.count(b"\n") if name == "responses" else 0)
    demo = " (includes DEMO data)" if export.population.use_demo else ""
    demo += " (includes PILOT responses)" if export.includes_pilot else ""
    click.echo(
        f"Exported {records} responses to {directory}{demo}; "
        f"k = {export.plan.smallest_class()} (required {k})."
    )


@click.command("vacuum-deleted")
@with_appcontext
def vacuum_deleted_command() -> None:
    """Rewrite the answer tables so that deleted answers leave the database files.

    PostgreSQL: VACUUM (FULL) locks each table while it is rewritten (run it when the
    survey is quiet). SQLite: VACUUM and a checkpoint that empties the write-ahead log.
    """
    from survey.extensions import db
    from survey.storage import vacuum_deleted

    db.session.remove()  # no transaction of ours may hold a lock the vacuum waits for
    for step in vacuum_deleted(db.engine):
        click.echo(step)
    click.echo(
        "Done. Backups, archived write-ahead logs and the file system's free blocks "
        "are not touched."
    )


def _safe_url() -> str:
    from sqlalchemy.engine import make_url

    return make_url(current_app.config["SQLALCHEMY_DATABASE_URI"]).render_as_string(
        hide_password=True
    )


@click.command("recompute-quality")
@with_appcontext
def recompute_quality_command() -> None:
    """Recompute every submitted response's quality indicators with today's page medians."""
    from survey import paradata

    count = paradata.recompute_all(responses.catalog())
    click.echo(f"Recomputed the quality indicators of {count} submitted response(s).")


@click.command("verify-answers")
@with_appcontext
@click.option("--repair", is_flag=True, help="Rewrite each mismatching vector from its rows.")
@click.option(
    "--batch", type=click.IntRange(1, 100_000), default=2000, show_default=True, hidden=True
)
def verify_answers_command(repair: bool, batch: int) -> None:
    """Check every response's answer vector against its answer rows (exit code 1 on any
    mismatch; with --repair, mismatches are rewritten from the rows and the exit code is 0)."""
    checked = mismatched = unrepairable = 0
    for count, mismatches in responses.check_vectors(repair=repair, batch=batch):
        checked += count
        mismatched += len(mismatches)
        unrepairable += sum(not m.repairable for m in mismatches)
        for mismatch in mismatches:
            done = " (repaired)" if repair and mismatch.repairable else ""
            click.echo(mismatch.describe() + done, err=not mismatch.repairable)
    if unrepairable:
        click.echo(
            f"Checked {checked} response(s): {unrepairable} hold answer rows their catalogue "
            "version does not ask; a vector cannot represent them (see the lines above).",
            err=True,
        )
        click.get_current_context().exit(1)
    if repair:
        click.echo(f"Checked {checked} response(s); repaired {mismatched} vector(s).")
    elif mismatched:
        click.echo(
            f"Checked {checked} response(s): {mismatched} vector(s) differ from their rows "
            "(run verify-answers --repair to rewrite them from the rows).",
            err=True,
        )
        click.get_current_context().exit(1)
    else:
        click.echo(f"Checked {checked} response(s): every vector equals its rows.")


def register(app: Flask) -> None:
    """Attach the commands to the app."""
    for command in (
        init_db,
        load_catalog_command,
        purge_drafts,
        seed_demo_command,
        report_command,
        create_researcher_command,
        setup_link_command,
        create_api_token_command,
        revoke_api_tokens_command,
        revoke_researcher_command,
        export_command,
        vacuum_deleted_command,
        recompute_quality_command,
        verify_answers_command,
    ):
        app.cli.add_command(command)
    from survey.backup import backup_command, restore_command

    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)
    from survey.manage_cli import COMMANDS as fieldwork_commands  # wave, channel, ...

    for group in fieldwork_commands:
        app.cli.add_command(group)
