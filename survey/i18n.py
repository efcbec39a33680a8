"""Language of the interface: Russian by default, English on request, kept in the session."""

from __future__ import annotations

from flask import current_app, has_request_context, request, session


def select_locale() -> str:
    """Flask-Babel's locale selector: ``?lang=`` first, then the session, then Russian."""
    languages = current_app.config["LANGUAGES"]
    if not has_request_context():  # the CLI: the default unless force_locale says otherwise
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    asked = request.args.get("lang")
    if asked in languages:
        session["lang"] = asked
        return asked
    chosen = session.get("lang")
    return chosen if chosen in languages else current_app.config["BABEL_DEFAULT_LOCALE"]


def current_language() -> str:
    """The language of the current request ('ru' or 'en')."""
    from flask_babel import get_locale

    locale = get_locale()
    return locale.language if locale is not None else "ru"
