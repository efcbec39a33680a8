"""Blueprint /results: a wave's public summary, for anyone, once an owner publishes it.

``GET /results/<code>`` shows the aggregate picture of one wave, never a personal answer:
the largest differences between Russian and foreign companies with their 95 % intervals,
the sample size and what the sample is (self-selected). ``GET /results/<code>/card.png``
is the 1200 x 630 preview image that messengers and social networks show for the link
(``og:image``). ``GET /results`` leads to the one published wave's summary (a redirect), lists
the published waves when there are several, and is a 404 when there is none.

What is published, and when:

* A wave is shown only when an owner has published it (``Wave.results_public``: the wave
  page, ``flask wave publish CODE`` or ``POST /api/v1/waves/<code>/publish``) and it is not a
  pilot wave; otherwise its address is a 404, as for a wave that does not exist.
* The numbers come from the one read path, :func:`survey.results.comparison` of the wave's
  segment: the disclosure gate, its cell masking, real submitted responses only (demo and
  flagged ones never count). A wave the gate withholds, with no real response (a demo study
  is never published) or with fewer than ``RESULTS_MIN_N`` respondents (the threshold of
  the respondent's own comparison page) says "results are not available yet", without any
  count.
* The practices shown are those whose primary test (every answer of both kinds) passes the
  Benjamini-Hochberg correction at :data:`ALPHA`, by absolute difference, at most :data:`TOP`;
  when fewer than :data:`FEWEST` pass, the largest other differences fill up to
  :data:`FEWEST`, each labelled "not statistically significant".

A viral link must not cost a comparison per visit: the rendered page and image are cached in
process per wave, language and ``data_version`` (and the settings they depend on), and sent
with ``Cache-Control: public, max-age=300`` and an ETag (a matching ``If-None-Match`` gets a
304). Per request only two small queries run (the published wave, the data version). The
page is rendered in a request of its own, with no cookie, so no visitor's flash message or
token can end up in the shared copy; and no response here carries a ``Set-Cookie``
(:class:`SessionInterface`): the language comes from ``?lang=``, else from the session,
which is only read (``Vary: Cookie`` then). Unknown query parameters (the ``utm_*`` and
click ids that messengers append) are ignored: they neither fail nor bypass the cache.

Decisions: only real data is ever published (a demo study says "not available yet" rather
than showing synthetic numbers under a DEMO banner to the public); pilot waves cannot be
published; with several published waves ``/results`` lists them rather than choosing one.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from flask_babel import force_locale, format_decimal
from flask_babel import gettext as _
from sqlalchemy import select

from survey import fieldwork
from survey.extensions import db
from survey.lazy import LazyModule
from survey.links import public_url
from survey.models import COMPANY_KINDS, Wave
from survey.responses import catalog

bp = Blueprint("public", __name__, url_prefix="/results")

ALPHA = 0.05  # the false discovery rate of the Benjamini-Hochberg q-values
TOP = 8  # practices shown at most
FEWEST = 5  # practices shown at least (when the table has them), significant or not
CARD_ROWS = 3  # practices on the preview image
MAX_AGE = 300  # seconds a browser or proxy may keep the page or the image
CACHE_SIZE = 64
CARD_SIZE = (1200, 630)
FONTS = Path(__file__).resolve().parent.parent / "static" / "fonts"
# The read path brings pandas, scipy and statsmodels: imported on the first summary, never
# in a worker that only serves respondents (see survey.lazy).
disclosure = LazyModule("survey.disclosure")
queries = LazyModule("survey.queries")
results = LazyModule("survey.results")
KINDS = COMPANY_KINDS

_lock = threading.Lock()


# ---------------------------------------------------------------- the numbers


@dataclass(frozen=True)
class Share:
    """A share of yes answers with its 95 % Wilson interval and its yes/no answers."""

    value: float
    low: float
    high: float
    n: int


@dataclass(frozen=True)
class Difference:
    """One practice: the shares in both kinds of company and their difference (Russian
    minus foreign, with the comparison's interval and Benjamini-Hochberg q-value)."""

    practice_id: str
    name: str
    shares: dict[str, Share]
    diff: float
    diff_low: float
    diff_high: float
    q_value: float
    significant: bool


@dataclass(frozen=True)
class Summary:
    """What the public page and image of a wave show."""

    code: str
    name: str
    available: bool
    n_respondents: int = 0
    rows: tuple[Difference, ...] = ()

    @property
    def significant(self) -> int:
        """How many of the rows pass the correction."""
        return sum(row.significant for row in self.rows)


def results_min_n() -> int:
    """Respondents a wave needs before its results are shown to respondents and the public
    (``RESULTS_MIN_N``; the disclosure gate decides as well)."""
    return int(current_app.config.get("RESULTS_MIN_N") or 0)


def summary(wave: Wave, lang: str) -> Summary:
    """The wave's public summary in ``lang``, from the gated, cached comparison."""
    name = wave.name_en if lang == "en" else wave.name_ru
    result = results.comparison(queries.Segment(wave=wave.code))
    if (
        result.suppressed
        or result.demo
        or result.pilot
        or not result.includes_real
        or result.n_respondents < results_min_n()
    ):
        return Summary(wave.code, name, available=False)
    rows = top_differences(result.table, results.practice_labels(lang))
    if not rows:  # every cell withheld: nothing to show yet
        return Summary(wave.code, name, available=False)
    return Summary(wave.code, name, True, result.n_respondents, rows)


def top_differences(table, labels: dict[str, str]) -> tuple[Difference, ...]:
    """The practices to show: those passing BH at :data:`ALPHA` by absolute difference (at
    most :data:`TOP`), filled up to :data:`FEWEST` with the largest others. Rows with a
    withheld share (the gate's cell rule) are never shown."""
    shown = table.dropna(subset=["p_ru", "p_foreign", "diff"])
    if shown.empty:
        return ()
    shown = shown.loc[shown["diff"].abs().sort_values(ascending=False, kind="stable").index]
    passing = shown["q_val"] < ALPHA
    picked = list(shown[passing].head(TOP).itertuples(index=False))
    if len(picked) < FEWEST:
        picked += list(shown[~passing].head(FEWEST - len(picked)).itertuples(index=False))
    return tuple(
        Difference(
            practice_id=row.practice_id,
            name=labels.get(row.practice_id, row.practice_id),
            shares={
                kind: Share(
                    float(getattr(row, f"p_{kind}")),
                    float(getattr(row, f"ci_{kind}_low")),
                    float(getattr(row, f"ci_{kind}_high")),
                    int(getattr(row, f"n_{kind}")),
                )
                for kind in KINDS
            },
            diff=float(row.diff),
            diff_low=float(row.diff_ci_low),
            diff_high=float(row.diff_ci_high),
            q_value=float(row.q_val),
            significant=bool(row.q_val < ALPHA),
        )
        for row in picked
    )


def published_waves() -> list[Wave]:
    """The waves whose summary is public (pilot waves never are), newest first."""
    stmt = select(Wave).where(Wave.results_public.is_(True), Wave.is_pilot.is_(False))
    return list(db.session.scalars(stmt.order_by(Wave.id.desc())))


def published_wave(code: str) -> Wave | None:
    """The published wave with this code, or None (unknown, unpublished or pilot)."""
    wave = fieldwork.wave_by_code(code)
    if wave is None or not wave.results_public or wave.is_pilot:
        return None
    return wave


# ---------------------------------------------------------------- display


def percent(share: float) -> str:
    """A share as a whole percentage in the interface language ("42 %" / "42%")."""
    return _("%(n)s%%", n=f"{share * 100:.0f}")


def points(diff: float) -> str:
    """A difference of shares in whole percentage points, with its sign ("+12 pp")."""
    value = round(diff * 100)
    sign = "+" if value > 0 else ("−" if value < 0 else "")
    return _("%(n)s pp", n=f"{sign}{abs(value)}")


def number(n: int) -> str:
    """A count with the language's digit grouping."""
    return format_decimal(n)


def share_links(url: str, text: str) -> dict[str, str]:
    """Plain share links (no third-party script): the networks' documented share URLs."""
    return {
        "Telegram": "https://t.me/share/url?" + urlencode({"url": url, "text": text}),
        "VK": "https://vk.com/share.php?" + urlencode({"url": url, "title": text}),
        "LinkedIn": "https://www.linkedin.com/sharing/share-offsite/?" + urlencode({"url": url}),
        "X": "https://twitter.com/intent/tweet?" + urlencode({"url": url, "text": text}),
        "email": f"mailto:?subject={quote(text)}&body={quote(text + chr(10) + url)}",
    }


def title() -> str:
    """The page's and the image's title."""
    return _("Motivation practices: Russian and foreign companies")


def description(s: Summary) -> str:
    """The preview's description: the sample and the largest difference, or not yet."""
    if not s.available:
        return _("Results of the survey will appear here once enough people have taken part.")
    top = s.rows[0]
    return _(
        "%(n)s respondents (a self-selected sample). Largest difference: %(practice)s, "
        "%(ru)s in Russian and %(foreign)s in foreign companies.",
        n=number(s.n_respondents),
        practice=top.name,
        ru=percent(top.shares["ru"].value),
        foreign=percent(top.shares["foreign"].value),
    )


def page_context(wave: Wave, lang: str) -> dict:
    """Everything the wave's page shows."""
    s = summary(wave, lang)
    share_url = public_url("public.wave", code=wave.code, lang=lang)
    text = title()
    return {
        "s": s,
        "page_title": text,
        "description": description(s),
        "share_url": share_url,
        "card_url": public_url("public.card", code=wave.code, lang=lang),
        "share": share_links(share_url, text),
        "percent": percent,
        "points": points,
        "number": number,
        "kinds": KINDS,
        "alpha": ALPHA,
    }


# ---------------------------------------------------------------- the preview image

INK, MUTED, TRACK = (29, 36, 48), (90, 100, 115), (228, 232, 238)
KIND_COLOURS = {"ru": (192, 57, 43), "foreign": (31, 95, 191)}


@lru_cache(maxsize=16)
def _font(size: int, bold: bool = False):
    from PIL import ImageFont

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return ImageFont.truetype(str(FONTS / name), size)


def _fit(draw, text: str, font, width: int) -> str:
    """``text`` cut with an ellipsis to fit ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text.rstrip() + "…"


def _wrap(draw, text: str, font, width: int, lines: int) -> list[str]:
    """``text`` in at most ``lines`` lines of ``width`` pixels (the last one cut)."""
    out, words = [], text.split()
    while words and len(out) < lines:
        line = words.pop(0)
        while words and draw.textlength(f"{line} {words[0]}", font=font) <= width:
            line += " " + words.pop(0)
        out.append(line)
    if words:
        out[-1] = _fit(draw, f"{out[-1]} {' '.join(words)}", font, width)
    return out


def kind_label(kind: str) -> str:
    """A kind of company, short (the image's bar labels)."""
    return _("Russian") if kind == "ru" else _("Foreign")


def render_card(s: Summary) -> bytes:
    """The 1200 x 630 PNG preview: title, sample size, the top differences as bars."""
    from PIL import Image, ImageDraw

    width, height = CARD_SIZE
    image = Image.new("RGB", CARD_SIZE, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width, 12), fill=KIND_COLOURS["foreign"])
    left, y = 60, 40
    for line in _wrap(draw, title(), _font(44, True), width - 2 * left, 2):
        draw.text((left, y), line, font=_font(44, True), fill=INK)
        y += 54
    if not s.available:
        sub = _fit(draw, s.name, _font(28), width - 2 * left)
        draw.text((left, y + 10), sub, font=_font(28), fill=MUTED)
        message = _("Results are not available yet.")
        draw.text((left, y + 90), message, font=_font(36, True), fill=INK)
    else:
        sub = _(
            "%(wave)s · %(n)s respondents · self-selected sample",
            wave=s.name,
            n=number(s.n_respondents),
        )
        draw.text(
            (left, y + 6), _fit(draw, sub, _font(26), width - 2 * left), font=_font(26), fill=MUTED
        )
        y += 56
        _card_rows(draw, s.rows[:CARD_ROWS], left, y)
    _card_footer(draw, left, height - 50)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _card_rows(draw, rows, left: int, y: int) -> None:
    width = CARD_SIZE[0]
    bar_left, bar_right = left + 190, width - left - 110
    for row in rows:
        name = _fit(draw, row.name, _font(28, True), width - 2 * left)
        draw.text((left, y), name, font=_font(28, True), fill=INK)
        y += 42
        for kind in KINDS:
            share = row.shares[kind]
            draw.text((left, y - 2), kind_label(kind), font=_font(22), fill=MUTED)
            draw.rectangle((bar_left, y, bar_right, y + 22), fill=TRACK)
            end = bar_left + round((bar_right - bar_left) * share.value)
            if end > bar_left:
                draw.rectangle((bar_left, y, end, y + 22), fill=KIND_COLOURS[kind])
            low = bar_left + round((bar_right - bar_left) * share.low)
            high = bar_left + round((bar_right - bar_left) * share.high)
            draw.line((low, y + 11, high, y + 11), fill=INK, width=3)
            for x in (low, high):
                draw.line((x, y + 4, x, y + 18), fill=INK, width=3)
            draw.text((bar_right + 14, y - 3), percent(share.value), font=_font(24, True), fill=INK)
            y += 30
        y += 18


def _card_footer(draw, left: int, y: int) -> None:
    width = CARD_SIZE[0]
    x = left
    for kind in KINDS:
        draw.rectangle((x, y + 4, x + 20, y + 24), fill=KIND_COLOURS[kind])
        text = _("Russian companies") if kind == "ru" else _("Foreign companies")
        draw.text((x + 30, y), text, font=_font(22), fill=INK)
        x += 30 + int(draw.textlength(text, font=_font(22))) + 40
    host = urlsplit(current_app.config["PUBLIC_URL"]).netloc
    if host:
        draw.text((width - left, y), host, font=_font(22), fill=MUTED, anchor="ra")


# ---------------------------------------------------------------- caching


def _store() -> OrderedDict:
    """This application's cache of rendered pages and images."""
    return current_app.extensions.setdefault("survey_public_cache", OrderedDict())


def _cached(key: tuple, build) -> tuple[bytes, str]:
    """``build()`` (bytes) and its ETag, remembered under ``key`` (least recently used out)."""
    store = _store()
    with _lock:
        if key in store:
            store.move_to_end(key)
            return store[key]
    body = build()
    entry = (body, hashlib.sha256(body).hexdigest()[:32])
    with _lock:
        store[key] = entry
        while len(store) > CACHE_SIZE:
            store.popitem(last=False)
    return entry


def clear_cache() -> None:
    """Forget this application's rendered pages and images."""
    with _lock:
        _store().clear()


def _key(kind: str, wave: Wave, lang: str) -> tuple:
    """What a wave's page or image depends on: the wave, the language, the stored data and
    the settings of the gate and the catalogue."""
    return (
        kind,
        wave.code,
        wave.name_ru,
        wave.name_en,
        lang,
        queries.data_version(),
        disclosure.min_cell(),
        results_min_n(),
        catalog().checksum,
    )


def _send(entry: tuple[bytes, str], mimetype: str) -> Response:
    body, etag = entry
    response = Response(body, mimetype=mimetype)
    response.set_etag(etag)
    response.headers["Cache-Control"] = f"public, max-age={MAX_AGE}"
    return response.make_conditional(request)


def _render(lang: str, template: str, context=dict) -> bytes:
    """This request's page (its path, without the query) rendered in a request of its own,
    with no cookie: nothing of the visitor (a flash message, a session value) can end up in
    the copy every visitor gets. ``context()`` is called in ``lang`` (its texts are
    translated there)."""
    clean = current_app.test_request_context(request.path, base_url=request.url_root)
    with clean, force_locale(lang):
        return render_template(template, **context()).encode()


def _asked_language() -> str | None:
    """The language ``?lang=`` asks for, if it is one of the site's."""
    asked = request.args.get("lang")
    return asked if asked in current_app.config["LANGUAGES"] else None


def _language() -> str:
    """``?lang=``, else the language the visitor chose with the site's switch (read from
    the session, which then adds ``Vary: Cookie``), else the default. Unlike the site-wide
    selector (survey/i18n.py), nothing is stored."""
    asked = _asked_language()
    if asked:
        return asked
    g.language_from_cookie = True
    chosen = session.get("lang")
    languages = current_app.config["LANGUAGES"]
    return chosen if chosen in languages else current_app.config["BABEL_DEFAULT_LOCALE"]


class SessionInterface(SecureCookieSessionInterface):
    """The site's signed-cookie session, except that a response of this blueprint never
    carries a ``Set-Cookie``, not even the refresh of a respondent's or a researcher's
    permanent session: caches share these responses, and must never hand one visitor's
    cookie to another. Installed by :func:`survey.create_app`."""

    def save_session(self, app, session, response) -> None:
        """Save as usual, but never on this blueprint (only ``Vary: Cookie`` if the language
        came from the cookie)."""
        if request.blueprint == bp.name:
            if g.get("language_from_cookie"):  # a cache must key the language on it
                response.vary.add("Cookie")
            return
        super().save_session(app, session, response)


def _not_found(lang: str) -> Response:
    """The 404 page in the visitor's language (not kept: publishing shows the wave at once)."""
    body = _render(lang, "errors/error.html", lambda: {"code": 404})
    return Response(body, 404, mimetype="text/html", headers={"Cache-Control": "no-cache"})


# ---------------------------------------------------------------- views


@bp.get("")
def index():
    """The one published wave's summary (a redirect), the published waves, or a 404."""
    lang = _language()
    waves = published_waves()
    if not waves:
        return _not_found(lang)
    asked = {"lang": lang} if _asked_language() else {}
    if len(waves) == 1:
        return redirect(url_for(".wave", code=waves[0].code, **asked))
    key = ("index", tuple((w.code, w.name_ru, w.name_en) for w in waves), lang)
    entry = _cached(key, lambda: _render(lang, "public/index.html", lambda: {"waves": waves}))
    return _send(entry, "text/html")


@bp.get("/<code>")
def wave(code: str):
    """A published wave's summary; 404 for any other code."""
    lang = _language()
    found = published_wave(code)
    if found is None:
        return _not_found(lang)
    entry = _cached(
        _key("page", found, lang),
        lambda: _render(lang, "public/wave.html", lambda: page_context(found, lang)),
    )
    return _send(entry, "text/html")


@bp.get("/<code>/card.png")
def card(code: str):
    """The preview image of a published wave's summary; 404 for any other code."""
    lang = _language()
    found = published_wave(code)
    if found is None:
        return _not_found(lang)

    def build() -> bytes:
        with force_locale(lang):
            return render_card(summary(found, lang))

    return _send(_cached(_key("card", found, lang), build), "image/png")
