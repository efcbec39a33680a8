"""The baseline for questionnaire pages: a bare Flask app with no ORM, forms or i18n.

GET /page renders a template of the same size as our practice page; POST /page inserts
the same number of answer rows with plain ``sqlite3`` in one transaction. Run by
``benchmarks.run`` under gunicorn with the same worker count as the real app.
"""

from __future__ import annotations

import os
import sqlite3

from flask import Flask, render_template_string, request

PAGE_BYTES = int(os.environ.get("BARE_PAGE_BYTES", "40000"))
ROWS = int(os.environ.get("BARE_ROWS", "14"))
DB = os.environ.get("BARE_DB", "/tmp/bare.db")  # noqa: S108 - benchmark scratch file

TEMPLATE = """<!doctype html><html><head><title>{{ title }}</title></head><body>
<form method="post">{% for i in items %}<fieldset><legend>Item {{ i }}</legend>
<label><input type="radio" name="q{{ i }}" value="yes"> yes</label>
<label><input type="radio" name="q{{ i }}" value="no"> no</label></fieldset>{% endfor %}
</form></body></html>"""

app = Flask(__name__)
_ITEM_BYTES = 190  # bytes of one rendered fieldset


def _connection() -> sqlite3.Connection:
    con = sqlite3.connect(DB, timeout=10)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    return con


def init_db() -> None:
    """Create the baseline's answer table (with the same unique key as ours)."""
    con = _connection()
    con.execute(
        "CREATE TABLE IF NOT EXISTS answer (id INTEGER PRIMARY KEY, response_id INTEGER, "
        "practice_id TEXT, company_kind TEXT, met TEXT, rating INTEGER, "
        "UNIQUE (response_id, practice_id, company_kind))"
    )
    con.commit()
    con.close()


@app.get("/page")
def page():
    """A page of the same size as a practice page."""
    return render_template_string(TEMPLATE, title="page", items=range(PAGE_BYTES // _ITEM_BYTES))


@app.post("/page")
def save():
    """Replace one respondent's page of answers in one transaction."""
    respondent = int(request.form.get("respondent", "1"))
    con = _connection()
    with con:
        con.execute("DELETE FROM answer WHERE response_id = ?", (respondent,))
        con.executemany(
            "INSERT INTO answer (response_id, practice_id, company_kind, met, rating) "
            "VALUES (?, ?, ?, ?, ?)",
            [(respondent, f"p{i // 2}", ("ru", "foreign")[i % 2], "yes", 4) for i in range(ROWS)],
        )
    con.close()
    return "", 303, {"Location": "/page"}
