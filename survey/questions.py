"""The questionnaire's fixed questions: work background and the practice-page scales.

Every code here is stored in the database and exported; labels are for display only.
Order matters: it is the order of the answer options on screen and in the codebook.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Option:
    code: str
    ru: str
    en: str

    def label(self, lang: str) -> str:
        """The option's label in ``lang``."""
        return self.en if lang == "en" else self.ru


@dataclass(frozen=True)
class Question:
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
        (
            _o("specialist", "Специалист", "Specialist"),
            _o("line_manager", "Линейный руководитель", "Line manager"),
            _o("middle_manager", "Руководитель среднего звена", "Middle manager"),
            _o("executive", "Топ-менеджер или владелец", "Executive or owner"),
        ),
        short_ru="Уровень должности",
        short_en="Role level",
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

# "Did you meet it?" asked per kind of company, as one natural sentence.
KIND_QUESTIONS = {
    "ru": Option(
        "ru",
        "Встречали ли вы эту практику в российской компании?",
        "Did you meet this practice in a Russian company?",
    ),
    "foreign": Option(
        "foreign",
        "Встречали ли вы эту практику в иностранной компании?",
        "Did you meet this practice in a foreign company?",
    ),
}

MET = Question(
    "met",
    "Встречали ли вы эту практику?",
    "Did you meet this practice?",
    (
        _o("yes", "Да", "Yes"),
        _o("no", "Нет", "No"),
        _o("dk", "Не знаю / не помню", "Don't know / don't remember"),
    ),
)

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
    hint_ru="Отвечайте, только если встречали практику.",
    hint_en="Answer only if you met the practice.",
)

EXAMPLE_MAX_CHARS = 1000

WORKED_IN_KINDS = {"ru_only": ("ru",), "foreign_only": ("foreign",), "both": ("ru", "foreign")}
# The consent version stored with a response comes from the consent texts in force
# (survey/consent.yaml, CONSENT_PATH); responses before 2026-12 carry "2026-11".
