"""Command line: ``flask --app survey <command>``."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask_migrate import upgrade

from survey import responses
from survey.catalog import CatalogError, load_catalog


@click.command("init-db")
def init_db() -> None:
    """Apply all database migrations (safe to run again)."""
    upgrade(directory=current_app.extensions["migrate"].directory)
    click.echo(f"Database is up to date: {_safe_url()}")


@click.command("load-catalog")
@click.argument("path", required=False)
def load_catalog_command(path: str | None) -> None:
    """Validate the practice catalogue and sync it into the database."""
    path = path or current_app.config["CATALOG_PATH"]
    try:
        cat = load_catalog(path)
    except CatalogError as exc:
        raise click.ClickException(str(exc)) from exc
    version = responses.sync_catalog(cat)
    click.echo(
        f"Catalogue {cat.version} ({len(cat.practices)} practices, {len(cat.categories)} "
        f"categories, {len(cat.pages)} pages) loaded from {path}; version row {version.id}."
    )
    if cat.checksum != responses.catalog().checksum:
        click.echo(
            "Note: the running app serves CATALOG_PATH; set CATALOG_PATH to serve this file."
        )


@click.command("purge-drafts")
@click.option("--days", type=int, default=None, help="Override DRAFT_TTL_DAYS.")
def purge_drafts(days: int | None) -> None:
    """Delete unfinished drafts older than the time to live."""
    count = responses.purge_drafts(days)
    click.echo(f"Deleted {count} expired draft(s).")


def _safe_url() -> str:
    from sqlalchemy.engine import make_url

    return make_url(current_app.config["SQLALCHEMY_DATABASE_URI"]).render_as_string(
        hide_password=True
    )


def register(app: Flask) -> None:
    """Attach the commands to the app."""
    for command in (init_db, load_catalog_command, purge_drafts):
        app.cli.add_command(command)
