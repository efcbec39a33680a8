"""The whole questionnaire through the test client, answers stored exactly as given."""

from sqlalchemy import func, select

from survey.extensions import db
from survey.models import Answer, Response
from tests.helpers import Respondent, expected_answers


def test_russian_respondent_completes_and_answers_are_stored(app, client):
    catalog = app.extensions["survey_catalog"]
    r = Respondent(client).complete(catalog)
    assert r.status_code == 302 and r.location.endswith("/thanks")
    with app.app_context():
        response = db.session.scalars(select(Response)).one()
        assert response.status == "submitted" and response.language == "ru"
        stored = {(a.practice_id, a.company_kind): (a.met, a.rating) for a in response.answers}
        assert stored == expected_answers(catalog, ("ru", "foreign"))
        answers = db.session.scalar(select(func.count()).select_from(Answer))
        assert answers == 2 * len(catalog.practices)
