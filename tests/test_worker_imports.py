"""A worker that only serves respondents never imports the analysis stack.

pandas, scipy, statsmodels (and polars or pyarrow, which pandas and statsmodels pull in when
they are installed) add about 100 MB to a gunicorn worker (`make bench --only footprint`,
target < 150 MB). Issue 15's public summary imported the read path at module level and the
worker went from 99 MB to 200 MB without a test noticing: this one notices, by module
names rather than by a timed or measured figure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

HEAVY = ("pandas", "scipy", "statsmodels", "polars", "pyarrow", "pyreadstat", "plotly", "analysis")

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from survey import create_app

    app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False,
                      "SQLALCHEMY_DATABASE_URI": sys.argv[1]})
    client = app.test_client()
    statuses = [client.get(path).status_code for path in ("/", "/?lang=en")]
    heavy = json.loads(sys.argv[2])
    print(json.dumps({"statuses": statuses, "loaded": [m for m in heavy if m in sys.modules]}))
    """
)


def test_a_respondent_worker_does_not_import_the_analysis_stack(app, database_url):
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, database_url, json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert all(status < 500 for status in found["statuses"]), found
    assert found["loaded"] == [], found["loaded"]
