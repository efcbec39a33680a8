"""The codebook: every column of every file, its type, its values with Russian and English
labels, and the question it answers (the data for ``codebook.csv``)."""

from __future__ import annotations

from collections.abc import Iterator

from survey import anonymize, paradata, queries
from survey.anonymize import KIND_QUASI_IDENTIFIERS, PILOT_COLUMN, SUPPRESSED
from survey.catalog import versions_by_wording
from survey.export.rows import UNKNOWN, WIDE_SUFFIXES
from survey.models import COMPANY_KINDS
from survey.questions import (
    BACKGROUND,
    KIND_BACKGROUND_BY_FIELD,
    KIND_LABELS,
    LEGACY_YES,
    MET,
    NOT_MY_ROLE,
    RATING,
    RATING_MIXED,
)

# Columns asked since 2026-12 only: empty in earlier responses ("not asked").
ASKED_SINCE_2026_12 = ("job_function", *KIND_BACKGROUND_BY_FIELD)
KIND_QUESTION = ("Тип компании", "Kind of company")
KIND_VALUES = [(kind, KIND_LABELS[kind].ru, KIND_LABELS[kind].en) for kind in COMPANY_KINDS]


# -- codebook vocabulary: (code, Russian label, English label) -------------------------------
NOT_ASKED_LABELS = (
    "не спрашивали (ответы до декабря 2026 г.)",
    "not asked (responses before December 2026)",
)
NOT_WORKED_LABELS = (
    "не применимо: не работал(а) в компаниях этого типа",
    "not applicable: never worked in this kind of company",
)
SCALE_VALUES = [
    (
        "existed_applied",
        "с декабря 2026 г.: была ли практика и касалась ли она респондента "
        "(касалась меня / была, но не для меня / нет / не знаю; «не относится к моей роли»)",
        "since December 2026: did the practice exist and did it apply to the respondent "
        "(applied to me / existed, not for me / no / don't know; “not applicable to my role”)",
    ),
    (
        "met",
        "до декабря 2026 г.: «Встречали ли вы эту практику?» (да / нет / не знаю)",
        "before December 2026: “Did you meet this practice?” (yes / no / don't know)",
    ),
    (
        "both",
        "часть ответов на каждой из шкал (например, анкета начата до декабря 2026 г. и "
        "закончена после)",
        "some answers on each scale (e.g. started before December 2026 and finished after)",
    ),
    (
        "",
        "не видно по ответам: только «нет», «не знаю» или не применимо (одинаковы на обеих шкалах)",
        "not shown by the answers: only no, don't know or not applicable (alike on both scales)",
    ),
]
# The met columns keep one meaning across both scales: the practice existed there.
MET_QUESTION = (
    f"{MET.ru} (до декабря 2026 г.: «Встречали ли вы эту практику?»)",
    f"{MET.en} (before December 2026: “Did you meet this practice?”)",
)
MET_VALUES = [
    (
        "1",
        "была (касалась меня, или была, но не для меня; до декабря 2026 г. — «встречал(а)»)",
        "existed (applied to me, or existed but not for me; before December 2026: “met it”)",
    ),
    (
        "0",
        "нет, такой не было (до декабря 2026 г. — «не встречал(а)»)",
        "no, it did not exist (before December 2026: “did not meet it”)",
    ),
    ("dk", MET.label("dk", "ru"), MET.label("dk", "en")),
    (
        NOT_MY_ROLE.code,
        f"{NOT_MY_ROLE.ru}: не «нет», не входит ни в одну долю (предлагается только для "
        "практик отдельных функций, с декабря 2026 г.)",
        f"{NOT_MY_ROLE.en}: not a “no”, left out of every share (offered only for "
        "practices of some job functions, since December 2026)",
    ),
    ("", *NOT_WORKED_LABELS),
]
APPLIED_QUESTION = (
    "касалась ли практика респондента лично (из ответа на вопрос «была ли эта практика»)",
    "did the practice apply to the respondent (from the answer to “did this practice exist”)",
)
APPLIED_VALUES = [
    ("1", MET.label("applied", "ru"), MET.label("applied", "en")),
    ("0", MET.label("existed", "ru"), MET.label("existed", "en")),
    (UNKNOWN, LEGACY_YES.ru, LEGACY_YES.en),
    (
        "",
        "не применимо: практики не было, «не знаю», «не относится к моей роли», или не "
        "работал(а) в компаниях этого типа (см. столбец существования практики: met в "
        "answers_long.csv, столбец без суффикса в responses.csv)",
        "not applicable: the practice did not exist, don't know, not applicable to my role, "
        "or never worked in this kind of company (see the existence column: met in "
        "answers_long.csv, the one without a suffix in responses.csv)",
    ),
]
RATING_TYPE = "integer 1-5, or the code mixed"
RATING_VALUES = [
    *((o.code, o.ru, o.en) for o in RATING.options),
    (
        RATING_MIXED.code,
        f"{RATING_MIXED.ru} — не точка шкалы 1–5, не входит в оценки (с декабря 2026 г.)",
        f"{RATING_MIXED.en} — not a point of the 1-5 scale, never in a rating statistic "
        "(since December 2026)",
    ),
    (
        "",
        "нет оценки (практика не касалась респондента, её не было, или не применимо)",
        "no rating (the practice did not apply to the respondent, did not exist, or n/a)",
    ),
]


# The columns of codebook.csv.
HEADER = [
    "file",
    "column",
    "type",
    "values",
    "labels_ru",
    "labels_en",
    "question_ru",
    "question_en",
    "catalog_version",
    "asked_in_versions",
]


def background_values(question, suppressed) -> list[tuple[str, str, str]]:
    """Codebook values of a background column: its options, their generalized codes, what
    an empty cell means, and the suppressed code."""
    values = [(o.code, o.ru, o.en) for o in question.options]
    for code, (ru, en) in anonymize.GENERALIZED_LABELS.get(question.field, {}).items():
        values.append((code, ru + " (укрупнено)", en + " (generalized)"))
    empty = []
    if question.field in KIND_BACKGROUND_BY_FIELD:
        empty.append(NOT_WORKED_LABELS)
    if question.field in ASKED_SINCE_2026_12:
        empty.append(NOT_ASKED_LABELS)
    if not question.required:
        empty.append(("нет ответа", "not answered"))
    if empty:
        values.append(("", "; ".join(ru for ru, _ in empty), "; ".join(en for _, en in empty)))
    values.append(suppressed)
    return values


def codebook_rows(export, entry=None) -> Iterator:
    """One row per column of both files: type, values with labels, question text.

    ``catalog_version`` is the version served now; ``asked_in_versions`` says, for a
    practice column, every catalogue version that asked it with this very wording (a
    practice id keeps one wording), i.e. the versions the column pools.

    ``entry``: yield ``entry(file, column, type, values, question_ru, question_en,
    versions)`` per column instead of text rows, without the header row (``values`` are
    ``(code, ru, en)``): the same data, structured (:mod:`survey.export.datapackage`).
    """
    version = export.catalog.version
    asked_in = asked_in_versions(export)
    if entry is None:
        yield HEADER

    def row(file, column, kind, values, question_ru, question_en, versions=""):
        if entry is not None:
            return entry(file, column, kind, values, question_ru, question_en, versions)
        codes = "|".join(value[0] for value in values)
        ru = "; ".join(f"{v or '(empty)'} = {r}" for v, r, _en in values)
        en = "; ".join(f"{v or '(empty)'} = {e}" for v, _ru, e in values)
        return [file, column, kind, codes, ru, en, question_ru, question_en, version, versions]

    both = ("responses.csv", "answers_long.csv")
    yield row(
        "responses.csv; answers_long.csv",
        "respondent_id",
        "string",
        [],
        "Случайный идентификатор ответа (не связан с базой данных)",
        "Random response identifier (not derived from any database id)",
    )
    suppressed = (SUPPRESSED, "скрыто для анонимности", "suppressed for anonymity")
    generalized_any = (anonymize.ANY, *anonymize.ANY_LABEL)
    yield from wave_and_channel(export, row, generalized_any, suppressed)
    months = sorted(
        set().union(*(p.released_codes("submitted_month") for p in export.plans())) - {SUPPRESSED}
    )
    yield row(
        "responses.csv",
        "submitted_month",
        "string (YYYY-MM; YYYY-Qn or YYYY when generalized)",
        [*((m, *anonymize.month_label(m)) for m in months), suppressed],
        "Месяц отправки анкеты (квартал или год, если укрупнено)",
        "Month the response was submitted (quarter or year when generalized)",
    )
    yield row(
        "responses.csv",
        "language",
        "categorical",
        [("ru", "русский", "Russian"), ("en", "английский", "English")]
        + [generalized_any, suppressed],
        "Язык анкеты",
        "Questionnaire language",
    )
    yield row(
        "responses.csv",
        "answer_scale",
        "categorical",
        [*SCALE_VALUES, suppressed],
        "Шкала, на которой даны ответы о практиках (видна по кодам ответов)",
        "The scale the practice answers were given on (shown by the answer codes)",
    )
    for question in BACKGROUND:
        yield row(
            "responses.csv",
            question.field,
            "categorical",
            background_values(question, suppressed),
            question.ru,
            question.en,
        )
    for field in KIND_QUASI_IDENTIFIERS:
        question = KIND_BACKGROUND_BY_FIELD[field]
        yield row(
            "responses.csv",
            field,
            "categorical",
            background_values(question, suppressed),
            question.ru,
            question.en,
        )
    if PILOT_COLUMN in export.quasi_identifiers:
        yield row(
            "responses.csv",
            PILOT_COLUMN,
            "0/1",
            [
                ("1", "ответ пилотной волны", "response of a pilot wave"),
                ("0", "ответ основной (не пилотной) волны", "response of a main (not pilot) wave"),
                suppressed,
            ],
            "Пилотная волна: выгрузка включает пилотные ответы по запросу (include_pilot); "
            "в основной анализ они не входят. Отметка не укрупняется и не скрывается отдельно "
            "(k выполняется и среди пилотных ответов); соединяйте с answers_long.csv и "
            "paradata.csv по respondent_id",
            "Pilot wave: the export includes pilot responses because it was asked to "
            "(include_pilot); they are not part of the main analysis. The mark is never "
            "generalized or suppressed on its own (k holds among the pilot responses too); "
            "join answers_long.csv and paradata.csv on respondent_id",
        )
    if export.with_demo_column:
        yield row(
            "; ".join(both),
            "is_demo",
            "0/1",
            [
                ("1", "синтетический демо-ответ", "synthetic demo response"),
                ("0", "реальный ответ", "real response"),
            ],
            "Демо-данные",
            "Demo data",
        )
    withheld = (
        SUPPRESSED,
        "скрыто для анонимности: все ответы этой анкеты скрыты вместе с её фоном",
        "suppressed for anonymity: every answer of this response is withheld with its background",
    )
    met_values = [*MET_VALUES, withheld]
    rating_values = [*RATING_VALUES, withheld]
    applied_values = [*APPLIED_VALUES, withheld]
    met_ru, met_en = MET_QUESTION
    applied_ru, applied_en = APPLIED_QUESTION
    names = export.practice_names
    for pid, name_ru, name_en in names:
        versions = "; ".join(asked_in.get(pid, ()))
        for suffix in WIDE_SUFFIXES:
            for kind in COMPANY_KINDS:
                where = KIND_LABELS[kind]
                column_type, values, question_ru, question_en = {
                    "": ("categorical", met_values, met_ru, met_en),
                    "_rating": (RATING_TYPE, rating_values, RATING.ru, RATING.en),
                    "_applied": ("categorical", applied_values, applied_ru, applied_en),
                }[suffix]
                yield row(
                    "responses.csv",
                    f"{pid}__{kind}{suffix}",
                    column_type,
                    values,
                    f"{name_ru}: {question_ru} ({where.ru})",
                    f"{name_en}: {question_en} ({where.en})",
                    versions,
                )
    yield row(
        "answers_long.csv",
        "practice_id",
        "string",
        names,
        "Практика (идентификатор каталога)",
        "Practice (catalogue id)",
    )
    yield row("answers_long.csv", "company_kind", "categorical", KIND_VALUES, *KIND_QUESTION)
    yield row("answers_long.csv", "met", "categorical", met_values, met_ru, met_en)
    yield row("answers_long.csv", "rating", RATING_TYPE, rating_values, RATING.ru, RATING.en)
    yield row("answers_long.csv", "applied", "categorical", applied_values, applied_ru, applied_en)
    yield from paradata_codebook(export, row)
    if export.options.include_examples:
        yield row("examples.csv", "practice_id", "string", [], "Практика", "Practice")
        yield row(
            "examples.csv",
            "company_kind",
            "categorical",
            [
                *KIND_VALUES,
                (
                    "",
                    "не указан (пример написан до появления поля для каждого типа)",
                    "not stated (written before there was a box per kind)",
                ),
            ],
            "Тип компании, о котором пример",
            "Kind of company the example is about",
        )
        yield row(
            "examples.csv",
            "text",
            "free text",
            [],
            "Пример (e-mail, телефоны и ссылки удалены)",
            "Example (e-mail addresses, phone numbers and URLs removed)",
        )


def wave_and_channel(export, row, generalized_any, suppressed) -> Iterator[list[str]]:
    """Codebook rows of the wave and channel columns (``row`` is :meth:`codebook_rows`'
    row builder): every wave, pilot ones marked, and every channel label (from the
    database: a label, never a link) with the waves that have it."""
    pilot = {code for wave_id, code, _ru, _en in export.wave_rows if wave_id in export.pilot_waves}
    waves = [
        (code, f"{ru} (пилотная)", f"{en} (pilot)") if code in pilot else (code, ru, en)
        for _id, code, ru, en in export.wave_rows
    ]
    if export.options.include_pilot:
        note = (
            " Ответы пилотных волн включены по запросу и отмечены в столбце is_pilot.",
            " Responses of pilot waves are included on request and marked in is_pilot.",
        )
    else:
        note = (
            " Ответы пилотных волн не выгружены (include_pilot=1 добавляет их).",
            " Responses of pilot waves are not exported (include_pilot=1 adds them).",
        )
    yield row(
        "responses.csv",
        "wave",
        "categorical",
        [*waves, generalized_any, suppressed],
        "Волна опроса." + note[0],
        "Survey wave." + note[1],
    )
    in_waves: dict[str, list[str]] = {}
    for _id, label, wave in export.channel_rows:
        in_waves.setdefault(label, []).append(wave)
    channels = [
        (
            label,
            f"канал «{label}» (волны: {', '.join(w)})",
            f"channel “{label}” (waves: {', '.join(w)})",
        )
        for label, w in sorted(in_waves.items())
    ]
    yield row(
        "responses.csv",
        "channel",
        "categorical",
        [
            *channels,
            ("", "не записан (например, демо-ответы)", "not recorded (e.g. demo responses)"),
            generalized_any,
            suppressed,
        ],
        "Канал, через который пришёл респондент (метка канала; одна метка в разных волнах — "
        "один вид канала). Квазиидентификатор, как и волна: маленький канал укрупняется "
        "или скрывается",
        "The channel the respondent came through (its label; the same label in two waves is "
        "the same kind of channel). A quasi-identifier like the wave: a small channel is "
        "generalized or suppressed",
    )


def paradata_codebook(export, row) -> Iterator[list[str]]:
    """Codebook rows of paradata.csv (``row`` is :meth:`codebook_rows`' row builder)."""
    file = "paradata.csv"
    suppressed = (SUPPRESSED, "скрыто для анонимности", "suppressed for anonymity")
    flag = [("1", "да", "yes"), ("0", "нет", "no"), ("", "не оценено", "not assessed")]
    unknown = ("", "неизвестно", "unknown")

    def bands(bounds):
        return [(b, f"{b} с", f"{b} s") for b in paradata.band_labels(bounds)]

    yield row(
        file,
        "first_kind",
        "categorical",
        [*KIND_VALUES, suppressed],
        "Чей столбец (тип компании) показывался первым",
        "Which kind of company's column was shown first",
    )
    yield row(
        file,
        "total_seconds",
        "band of seconds",
        [*bands(paradata.TOTAL_BANDS), unknown, suppressed],
        "Время на страницах анкеты (секунды, интервал; каждая страница не более 30 минут)",
        "Time on the questionnaire's pages (seconds, band; each page at most 30 minutes)",
    )
    texts = {
        "fictitious_claimed": (
            "Ответил(а), что встречал(а) вымышленную практику (завышение)",
            "Claimed to have met the fictitious practice (over-claiming)",
            flag,
        ),
        "straightlined_pages": (
            "Число страниц с одинаковыми ответами на все практики (для какого-либо типа)",
            "Pages with identical answers to every practice (for some kind)",
            [("", "не оценено", "not assessed")],
        ),
        "speeding_pages": (
            "Число страниц, пройденных быстрее 30% медианного времени страницы",
            "Pages answered in under 30% of the page's median time",
            [("", "не оценено", "not assessed")],
        ),
        "low_quality": (
            "Низкое качество: завышение, или одинаковые ответы либо спешка на половине страниц",
            "Low quality: over-claiming, or straightlining or speeding on half of the pages",
            flag,
        ),
    }
    for name, (ru, en, values) in texts.items():
        kind = "0/1" if name in ("fictitious_claimed", "low_quality") else "integer"
        yield row(file, name, kind, [*values, suppressed], ru, en)
    yield row(
        file,
        "language_mixed",
        "0/1",
        [
            ("1", "да: страницы сохранены на разных языках", "yes: pages saved in both"),
            ("0", "нет: все страницы на одном языке", "no: every page in one language"),
            (
                "",
                "неизвестно (сохранено до записи языка страниц, или демо)",
                "unknown (saved before page languages were recorded, or demo)",
            ),
            suppressed,
        ],
        "Ответные страницы (опыт работы и практики) сохранены на разных языках "
        "интерфейса; язык каждой страницы не публикуется",
        "The answer pages (background and practices) were saved in different interface "
        "languages; the language of each page is not released",
    )
    yield row(
        file,
        "background_seconds",
        "band of seconds",
        [*bands(paradata.PAGE_BANDS), unknown, suppressed],
        "Время на странице «Опыт работы» (секунды, интервал)",
        "Time on the work-background page (seconds, band)",
    )
    for page in export.catalog.pages:
        name = page.category.name
        yield row(
            file,
            f"page_{page.key}__position",
            "integer",
            [suppressed],
            f"Место страницы «{name.ru}» в порядке этого респондента (1 = первая)",
            f"Position of the page “{name.en}” in this respondent's order (1 = first)",
        )
        yield row(
            file,
            f"page_{page.key}__seconds",
            "band of seconds",
            [*bands(paradata.PAGE_BANDS), unknown, suppressed],
            f"Время на странице «{name.ru}» (секунды, интервал)",
            f"Time on the page “{name.en}” (seconds, band)",
        )
        yield row(
            file,
            f"page_{page.key}__straightlining",
            "0/1",
            [*flag, suppressed],
            f"Одинаковые ответы на все практики страницы «{name.ru}»",
            f"Identical answers to every practice of the page “{name.en}”",
        )
        yield row(
            file,
            f"page_{page.key}__speeding",
            "0/1",
            [
                ("1", "да", "yes"),
                ("0", "нет", "no"),
                ("", "не оценено (мало данных или время неизвестно)", "not judged"),
                suppressed,
            ],
            f"Страница «{name.ru}» пройдена быстрее 30% её медианного времени",
            f"Page “{name.en}” answered in under 30% of its median time",
        )
    for practice in export.catalog.practices:
        yield row(
            file,
            f"{practice.id}__page_position",
            "integer",
            [suppressed],
            f"{practice.name.ru}: место её страницы в порядке респондента",
            f"{practice.name.en}: position of its page in the respondent's order",
        )
        yield row(
            file,
            f"{practice.id}__item_position",
            "integer",
            [suppressed],
            f"{practice.name.ru}: место на своей странице (1 = первая)",
            f"{practice.name.en}: position on its page (1 = first)",
        )


def asked_in_versions(export) -> dict[str, tuple[str, ...]]:
    """Per practice id, the catalogue versions that asked it with its latest wording,
    from the stored version snapshots (and the served catalogue, if not yet stored)."""
    rows = queries.catalog_snapshots()
    snapshots = [(v, content) for v, _checksum, content in rows]
    if export.catalog.checksum not in {checksum for _v, checksum, _c in rows}:
        snapshots.append((export.catalog.version, export.catalog.snapshot()))
    return versions_by_wording(snapshots)
