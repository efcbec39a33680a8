"""The questionnaire's fixed questions: work background and the practice-page scales.

Every code here is stored in the database and exported; labels are for display only.
Order matters: it is the order of the answer options on screen and in the codebook.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Option:
    """One answer option: its stored code and its Russian and English labels."""

    code: str
    ru: str
    en: str

    def label(self, lang: str) -> str:
        """The option's label in ``lang``."""
        return self.en if lang == "en" else self.ru


@dataclass(frozen=True)
class Question:
    """A fixed question: the stored field, its wording, options and hints in both languages."""

    field: str
    ru: str
    en: str
    options: tuple[Option, ...]
    required: bool = True
    hint_ru: str = ""
    hint_en: str = ""
    short_ru: str = ""
    short_en: str = ""

    def text(self, lang: str) -> str:
        """The question's wording in ``lang``."""
        return self.en if lang == "en" else self.ru

    def short(self, lang: str) -> str:
        """A short name of the question (filters, codebook headers)."""
        text = self.short_en if lang == "en" else self.short_ru
        return text or self.text(lang)

    def hint(self, lang: str) -> str:
        """The help text under the question in ``lang``."""
        return self.hint_en if lang == "en" else self.hint_ru

    def codes(self) -> tuple[str, ...]:
        """The stored codes of the options."""
        return tuple(o.code for o in self.options)

    def label(self, code: str | None, lang: str) -> str:
        """The label of a stored code, or the code itself if unknown."""
        for option in self.options:
            if option.code == code:
                return option.label(lang)
        return code or ""


def _o(code: str, ru: str, en: str) -> Option:
    return Option(code, ru, en)


# The kinds of company an answer is about, in display order: the one list of the application,
# here because survey/models.py imports this module (``survey.models.COMPANY_KINDS`` is the same
# tuple). analysis/ imports nothing from survey/ and names the same kinds
# analysis.proportions.KINDS; tests/test_queries.py keeps the two equal.
COMPANY_KINDS = ("ru", "foreign")


# Job functions: the respondent's now, and the one held in each kind of company. A practice
# the catalogue marks with ``functions:`` (sales commission...) exists only for some of them.
FUNCTION_OPTIONS = (
    _o("sales", "Продажи и работа с клиентами", "Sales and account management"),
    _o("hr", "Управление персоналом (HR)", "Human resources (HR)"),
    _o("it", "ИТ и инженерия", "IT and engineering"),
    _o("finance", "Финансы и бухгалтерия", "Finance and accounting"),
    _o("operations", "Операции и производство", "Operations and production"),
    _o("other", "Другое", "Other"),
)

ROLE_OPTIONS = (
    _o("specialist", "Специалист", "Specialist"),
    _o("line_manager", "Линейный руководитель", "Line manager"),
    _o("middle_manager", "Руководитель среднего звена", "Middle manager"),
    _o("executive", "Топ-менеджер или владелец", "Executive or owner"),
)

BACKGROUND: tuple[Question, ...] = (
    Question(
        "worked_in",
        "В каких компаниях вы работали за свою карьеру?",
        "In which kinds of company have you worked during your career?",
        (
            _o("ru_only", "Только в российских компаниях", "Only in Russian companies"),
            _o(
                "foreign_only",
                "Только в иностранных компаниях (включая их российские дочерние компании)",
                "Only in foreign companies (including their Russian subsidiaries)",
            ),
            _o(
                "both",
                "И в российских, и в иностранных компаниях",
                "In both Russian and foreign companies",
            ),
        ),
        hint_ru="Иностранная компания — международная или зарубежная, в том числе её "
        "подразделение или дочерняя компания в России.",
        hint_en="A foreign company is an international or non-Russian company, including "
        "its branch or subsidiary in Russia.",
        short_ru="Опыт работы в компаниях",
        short_en="Kinds of company worked in",
    ),
    Question(
        "current_employer",
        "Где вы работаете сейчас?",
        "Where do you work now?",
        (
            _o("ru", "В российской компании", "In a Russian company"),
            _o("foreign", "В иностранной компании", "In a foreign company"),
            _o("self", "Свой бизнес или самозанятость", "Own business or self-employed"),
            _o("not_working", "Сейчас не работаю", "Not working at the moment"),
        ),
        short_ru="Текущее место работы",
        short_en="Current employer",
    ),
    Question(
        "industry",
        "В какой отрасли вы работаете (или работали последним)?",
        "In which industry do you work (or did you work last)?",
        (
            _o("it", "ИТ и телеком", "IT and telecoms"),
            _o("finance", "Финансы, банки, страхование", "Finance, banking, insurance"),
            _o("manufacturing", "Производство и инжиниринг", "Manufacturing and engineering"),
            _o("retail", "Розничная и оптовая торговля", "Retail and wholesale"),
            _o("fmcg", "Потребительские товары (FMCG)", "Consumer goods (FMCG)"),
            _o("energy", "Энергетика, нефть и газ, добыча", "Energy, oil and gas, mining"),
            _o(
                "consulting",
                "Консалтинг и профессиональные услуги",
                "Consulting and professional services",
            ),
            _o("pharma", "Фармацевтика и здравоохранение", "Pharmaceuticals and healthcare"),
            _o("logistics", "Транспорт и логистика", "Transport and logistics"),
            _o("public", "Госсектор, образование, НКО", "Public sector, education, non-profit"),
            _o("other", "Другая отрасль", "Other industry"),
        ),
        short_ru="Отрасль",
        short_en="Industry",
    ),
    Question(
        "company_size",
        "Сколько человек работает в компании (или работало в последней)?",
        "How many people work in the company (or in your last one)?",
        (
            _o("lt50", "Меньше 50", "Fewer than 50"),
            _o("50_249", "50–249", "50–249"),
            _o("250_999", "250–999", "250–999"),
            _o("1000_4999", "1 000–4 999", "1,000–4,999"),
            _o("5000plus", "5 000 и больше", "5,000 or more"),
        ),
        short_ru="Размер компании",
        short_en="Company size",
    ),
    Question(
        "role_level",
        "Ваш уровень должности сейчас (или на последнем месте работы)?",
        "Your role level now (or in your last job)?",
        ROLE_OPTIONS,
        short_ru="Уровень должности",
        short_en="Role level",
    ),
    Question(
        "job_function",
        "Ваша функция сейчас (или на последнем месте работы)?",
        "Your job function now (or in your last job)?",
        FUNCTION_OPTIONS,
        short_ru="Функция",
        short_en="Job function",
    ),
    Question(
        "experience_band",
        "Общий стаж работы",
        "Total years of work experience",
        (
            _o("lt3", "Меньше 3 лет", "Less than 3 years"),
            _o("3_5", "3–5 лет", "3–5 years"),
            _o("6_10", "6–10 лет", "6–10 years"),
            _o("11_20", "11–20 лет", "11–20 years"),
            _o("20plus", "Больше 20 лет", "More than 20 years"),
        ),
        short_ru="Стаж",
        short_en="Experience",
    ),
    Question(
        "region",
        "Где вы живёте? (необязательно)",
        "Where do you live? (optional)",
        (
            _o("moscow", "Москва и область", "Moscow and its region"),
            _o("spb", "Санкт-Петербург и область", "Saint Petersburg and its region"),
            _o("other_ru", "Другой регион России", "Another region of Russia"),
            _o("abroad", "За пределами России", "Outside Russia"),
        ),
        required=False,
        short_ru="Регион",
        short_en="Region",
    ),
)

BACKGROUND_BY_FIELD = {q.field: q for q in BACKGROUND}

KIND_LABELS = {
    "ru": Option("ru", "В российской компании", "In a Russian company"),
    "foreign": Option("foreign", "В иностранной компании", "In a foreign company"),
}

# "Did it exist there?" asked per kind of company, as one natural sentence.
KIND_QUESTIONS = {
    "ru": Option(
        "ru",
        "Была ли эта практика в российской компании, где вы работали?",
        "Did a Russian company you worked for have this practice?",
    ),
    "foreign": Option(
        "foreign",
        "Была ли эта практика в иностранной компании, где вы работали?",
        "Did a foreign company you worked for have this practice?",
    ),
}

# What a respondent can report about a practice in one kind of company (since 2026-12).
# Prevalence counts both "existed" answers; the rating is asked only after "applied".
MET = Question(
    "met",
    "Была ли эта практика?",
    "Did this practice exist?",
    (
        _o("applied", "Да, и она касалась меня", "Yes, and it applied to me"),
        _o("existed", "Была, но не для меня", "It existed, but not for me"),
        _o("no", "Нет, такой не было", "No, it did not exist"),
        _o("dk", "Не знаю / не помню", "Don't know / don't remember"),
    ),
)

# Offered only for practices the catalogue marks as existing for some job functions
# (``functions:``); kept apart from "no" and left out of every share.
NOT_MY_ROLE = _o("not_my_role", "Не относится к моей роли", "Not applicable to my role")

# Responses before 2026-12 were asked "did you meet it?" (yes / no / don't know): their
# "yes" says the practice existed, not whether it applied to the respondent.
LEGACY_YES = _o(
    "yes",
    "Встречал(а) — до декабря 2026 г. не спрашивали, касалась ли лично",
    "Met it — before December 2026 we did not ask whether it applied to the respondent",
)

# Stored ``met`` codes that mean "the practice existed there".
EXISTED = ("applied", "existed", "yes")
# Stored ``met`` codes that carry a rating (the respondent was asked for one).
RATED = ("applied", "yes")
# Stored ``met`` codes left out of every share: the kind was not worked in ('na'), or the
# practice does not concern the respondent's role.
NOT_ASKED = ("na", "not_my_role")

MET_LABELS = {o.code: o for o in (*MET.options, NOT_MY_ROLE, LEGACY_YES)}

RATING = Question(
    "rating",
    "Как она повлияла на вашу мотивацию?",
    "How did it affect your motivation?",
    (
        _o("1", "1 — сильно демотивировала", "1 — strongly demotivating"),
        _o("2", "2 — скорее демотивировала", "2 — somewhat demotivating"),
        _o("3", "3 — не повлияла", "3 — no effect"),
        _o("4", "4 — скорее мотивировала", "4 — somewhat motivating"),
        _o("5", "5 — сильно мотивировала", "5 — strongly motivating"),
    ),
    required=False,
    hint_ru="Отвечайте, только если практика касалась вас.",
    hint_en="Answer only if the practice applied to you.",
)

# A non-substantive answer to the rating: stored apart (``answer.rating_mixed``), never a
# point of the 1-5 scale, never in a mean, median or test.
RATING_MIXED = _o("mixed", "Неоднозначно / не могу сказать", "Mixed / can't say")

# ---------------------------------------------------------------- each kind of company
# Asked once for each kind the respondent worked in (columns ``<kind>_<name>``): how long,
# how recently, with how many employers, and in which role. The period (``last_year``)
# anchors the kind in time: a filter and a split of every comparison.

PERIODS = ("before_2014", "2014_2021", "2022_on")

KIND_PLACES = {
    # (plural "in ... companies", singular "in a ... company", "how many ... companies")
    "ru": (
        ("в российских компаниях", "in Russian companies"),
        ("в российской компании", "in a Russian company"),
        ("российских компаниях", "Russian companies"),
    ),
    "foreign": (
        ("в иностранных компаниях", "in foreign companies"),
        ("в иностранной компании", "in a foreign company"),
        ("иностранных компаниях", "foreign companies"),
    ),
}

KIND_BLOCK_TITLES = {
    "ru": Option("ru", "Ваш опыт в российских компаниях", "Your experience in Russian companies"),
    "foreign": Option(
        "foreign", "Ваш опыт в иностранных компаниях", "Your experience in foreign companies"
    ),
}

KIND_FIELDS = ("years", "last_year", "employers", "role_level", "function")


def _kind_question(kind: str, name: str) -> Question:
    (in_ru, in_en), (one_ru, one_en), (many_ru, many_en) = KIND_PLACES[kind]
    field = f"{kind}_{name}"
    if name == "years":
        return Question(
            field,
            f"Сколько лет в сумме вы проработали {in_ru}?",
            f"How many years in total have you worked {in_en}?",
            (
                _o("lt1", "Меньше года", "Less than a year"),
                _o("1_2", "1–2 года", "1–2 years"),
                _o("3_5", "3–5 лет", "3–5 years"),
                _o("6_10", "6–10 лет", "6–10 years"),
                _o("10plus", "Больше 10 лет", "More than 10 years"),
            ),
            short_ru=f"Стаж {in_ru}",
            short_en=f"Years {in_en}",
        )
    if name == "last_year":
        return Question(
            field,
            f"Когда вы последний раз работали {one_ru}?",
            f"When did you last work {one_en}?",
            (
                _o(
                    "2022_on",
                    "В 2022 году или позже (в том числе сейчас)",
                    "In 2022 or later (including now)",
                ),
                _o("2014_2021", "В 2014–2021 годах", "In 2014–2021"),
                _o("before_2014", "До 2014 года", "Before 2014"),
            ),
            hint_ru="Ответы об этих компаниях относятся к этому времени.",
            hint_en="Your answers about these companies refer to that time.",
            short_ru=f"Период опыта {in_ru}",
            short_en=f"Period of experience {in_en}",
        )
    if name == "employers":
        return Question(
            field,
            f"В скольких {many_ru} вы работали?",
            f"How many {many_en} have you worked for?",
            (
                _o("1", "В одной", "One"),
                _o("2_3", "В 2–3", "2–3"),
                _o("4plus", "В 4 и более", "4 or more"),
            ),
            short_ru=f"Число работодателей ({many_ru})",
            short_en=f"Number of employers ({many_en})",
        )
    if name == "role_level":
        return Question(
            field,
            f"Самый высокий уровень должности, который вы занимали {in_ru}?",
            f"The highest role level you held {in_en}?",
            ROLE_OPTIONS,
            short_ru=f"Уровень должности {in_ru}",
            short_en=f"Role level {in_en}",
        )
    return Question(
        field,
        f"Ваша основная функция {in_ru}?",
        f"Your main job function {in_en}?",
        FUNCTION_OPTIONS,
        short_ru=f"Функция {in_ru}",
        short_en=f"Job function {in_en}",
    )


KIND_BACKGROUND: dict[str, tuple[Question, ...]] = {
    kind: tuple(_kind_question(kind, name) for name in KIND_FIELDS) for kind in COMPANY_KINDS
}
KIND_BACKGROUND_BY_FIELD = {q.field: q for qs in KIND_BACKGROUND.values() for q in qs}


def kind_field(kind: str, name: str) -> str:
    """The column (and form field) of one per-kind question, e.g. ``ru_last_year``."""
    return f"{kind}_{name}"


EXAMPLE_MAX_CHARS = 1000

WORKED_IN_KINDS = {"ru_only": ("ru",), "foreign_only": ("foreign",), "both": COMPANY_KINDS}
# The worked_in codes of the respondents who answer about each kind of company.
KIND_WORKERS = {
    kind: tuple(code for code, kinds in WORKED_IN_KINDS.items() if kind in kinds)
    for kind in COMPANY_KINDS
}
# The consent version stored with a response comes from the consent texts in force
# (survey/consent.yaml, CONSENT_PATH); responses before 2026-12 carry "2026-11".
