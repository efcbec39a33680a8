"""Statistical disclosure control for exports: generalize, then suppress, to reach k-anonymity.

Works on the table of quasi-identifier combinations (one row per distinct combination
with its count, from a SQL GROUP BY), never on the microdata, so it costs the same for
a hundred or a million responses. Suppressed values are released as ``SUPPRESSED``.

The quasi-identifiers (:data:`QUASI_IDENTIFIERS`, the one definition) are everything a
released row says about its respondent that someone who knows them could also know: the
wave, the channel they came through (its label: a channel of six respondents would single
them out as surely as a rare background), the submission month, the questionnaire
language, the answer scale, the background answers (job function included) and the
period of each kind of company worked in. An export that includes pilot waves adds
:data:`PILOT_COLUMN`, a quasi-identifier of its own (the wave column may be generalized
away, the label must stay).
``worked_in`` and ``answer_scale`` are *structural*: the answer columns give them away (a
kind of company never worked in has only not-applicable, empty answers; a former "met it"
answer, or an "applied" / "existed" / "not my role" one, shows the scale it was given on),
so they are never suppressed or generalized on their own and stay in every released
combination. A record still rare once everything else is suppressed keeps only those; when
even that class is smaller than k the record is fully suppressed, and the export then
withholds its answers as well (every answer cell released as ``SUPPRESSED``), so no answer
pattern is left to infer it from.

Each kind's block (survey/questions.py KIND_BACKGROUND) is released by
:data:`RELEASED_KIND_FIELDS`: the period (``<kind>_last_year``) only. Measured on demo data
(2,000 and 10,000 respondents, k = 5), the period stays exact for 99% of the rows at no
cost to the other columns, while the years, number of employers, role level and function
in each kind were generalized away entirely when released as well (and the function cost
the role level now, at 10,000). They are withheld: not in the files, not quasi-identifiers.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from survey.config import DEFAULT_K, DEFAULT_MAX_SUPPRESSED_SHARE
from survey.questions import (
    BACKGROUND,
    COMPANY_KINDS,
    FUNCTION_OPTIONS,
    KIND_FIELDS,
    kind_field,
)

SUPPRESSED = "suppressed"
ANY = "any"

# The fields of each kind's block released in the export (the others are withheld: see the
# module docstring for the measurements behind this choice).
RELEASED_KIND_FIELDS: tuple[str, ...] = ("last_year",)
KIND_QUASI_IDENTIFIERS: tuple[str, ...] = tuple(
    kind_field(kind, name) for name in RELEASED_KIND_FIELDS for kind in COMPANY_KINDS
)
# Everything a released row says about who answered, in the column order of responses.csv.
QUASI_IDENTIFIERS: tuple[str, ...] = (
    "wave",
    "channel",
    "submitted_month",
    "language",
    "answer_scale",
    *(q.field for q in BACKGROUND),
    *KIND_QUASI_IDENTIFIERS,
)
# The mark of a pilot wave's response (1) in an export that includes pilot waves: released
# with the row like the wave, and like a structural one never generalized or suppressed on
# its own, so that k holds among the pilot responses by themselves and the label survives
# wherever the wave column is generalized away.
PILOT_COLUMN = "is_pilot"
# Quasi-identifiers the answer columns reveal (and the pilot label): kept in every released
# combination.
STRUCTURAL: tuple[str, ...] = ("worked_in", "answer_scale", PILOT_COLUMN)

# The job function, coarsened to the functions the catalogue marks practices with (2026.4:
# sales) and all the others. A test fails if the catalogue ever marks another function.
MARKED_FUNCTIONS = ("sales",)
NON_SALES = "non_sales"
FUNCTION_COARSENING = {
    o.code: NON_SALES for o in FUNCTION_OPTIONS if o.code not in MARKED_FUNCTIONS
}
BEFORE_2022 = "before_2022"
PERIOD_COARSENING = {"2014_2021": BEFORE_2022, "before_2014": BEFORE_2022}

MONTH_RE = re.compile(r"(\d{4})-(\d{2})")
QUARTER_RE = re.compile(r"(\d{4})-Q([1-4])")
YEAR_RE = re.compile(r"\d{4}")


def month_to_quarter(code: str | None) -> str | None:
    """``2024-05`` -> ``2024-Q2``; any other code stays as it is."""
    match = MONTH_RE.fullmatch(code or "")
    return f"{match[1]}-Q{(int(match[2]) - 1) // 3 + 1}" if match else code


def quarter_to_year(code: str | None) -> str | None:
    """``2024-Q2`` -> ``2024``; any other code stays as it is."""
    match = QUARTER_RE.fullmatch(code or "")
    return match[1] if match else code


def to_any(code: str | None) -> str | None:
    """Every answered code -> ``any`` (the variable is dropped); unanswered stays unanswered."""
    return code if code is None else ANY


Recode = Mapping[str, str] | Callable[[str | None], str | None]

# Generalization steps, applied globally and in this order while too many records are rare.
# Each maps a variable's codes to coarser codes (a table, or a function for codes that
# depend on the data, such as months); unlisted codes stay as they are. worked_in and
# answer_scale have no step: they are structural (see the module docstring). The period of
# each kind goes last but for the wave: it is what the new design is about.
GENERALIZATIONS: tuple[tuple[str, Recode], ...] = (
    ("submitted_month", month_to_quarter),
    (
        "region",
        {"moscow": "moscow_spb", "spb": "moscow_spb", "other_ru": "other", "abroad": "other"},
    ),
    (
        "industry",
        {
            "it": "it_finance",
            "finance": "it_finance",
            "manufacturing": "industry_energy",
            "energy": "industry_energy",
            "retail": "trade_logistics",
            "fmcg": "trade_logistics",
            "logistics": "trade_logistics",
            "consulting": "services",
            "pharma": "services",
            "public": "public_other",
            "other": "public_other",
        },
    ),
    (
        "company_size",
        {"lt50": "lt250", "50_249": "lt250", "250_999": "250_4999", "1000_4999": "250_4999"},
    ),
    ("experience_band", {"lt3": "lt6", "3_5": "lt6", "6_10": "6_20", "11_20": "6_20"}),
    ("current_employer", {"self": "other", "not_working": "other"}),
    ("role_level", {"line_manager": "manager", "middle_manager": "manager"}),
    ("job_function", FUNCTION_COARSENING),
    # Second level: broad bands, then dropping the least analytic detail altogether.
    ("submitted_month", quarter_to_year),
    ("channel", to_any),  # how people were reached: the dashboard's, not the analysis'
    ("language", to_any),  # the questionnaire's language matters less than any background
    ("region", {"moscow_spb": ANY, "other": ANY}),
    ("current_employer", {"ru": ANY, "foreign": ANY, "other": ANY}),
    ("experience_band", {"6_20": "6plus", "20plus": "6plus"}),
    ("company_size", {"250_4999": "250plus", "5000plus": "250plus"}),
    (
        "industry",
        {
            c: ANY
            for c in (
                "it_finance",
                "industry_energy",
                "trade_logistics",
                "services",
                "public_other",
            )
        },
    ),
    ("role_level", {"specialist": ANY, "manager": ANY, "executive": ANY}),
    ("job_function", to_any),
    *((name, PERIOD_COARSENING) for name in KIND_QUASI_IDENTIFIERS if name.endswith("last_year")),
    *((name, to_any) for name in KIND_QUASI_IDENTIFIERS),
    ("wave", to_any),
)
# Local suppression: the order in which a rare record loses single values (never worked_in).
SUPPRESSION_ORDER: tuple[str, ...] = (
    "submitted_month",
    "channel",
    "language",
    "wave",
    "region",
    "industry",
    "company_size",
    "experience_band",
    "current_employer",
    "job_function",
    "role_level",
    *KIND_QUASI_IDENTIFIERS,
)
ANY_LABEL = ("любое (скрыто укрупнением)", "any (removed by generalization)")
MONTHS_RU = (
    "январь",
    "февраль",
    "март",
    "апрель",
    "май",
    "июнь",
    "июль",
    "август",
    "сентябрь",
    "октябрь",
    "ноябрь",
    "декабрь",
)
MONTHS_EN = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def recode(step: Recode, code: str | None) -> str | None:
    """The code one generalization step gives ``code``."""
    return step(code) if callable(step) else step.get(code, code)


def month_label(code: str) -> tuple[str, str]:
    """Russian and English labels of a released month, quarter or year code."""
    if match := MONTH_RE.fullmatch(code):
        month = int(match[2]) - 1
        return f"{MONTHS_RU[month]} {match[1]}", f"{MONTHS_EN[month]} {match[1]}"
    if match := QUARTER_RE.fullmatch(code):
        return (
            f"{match[2]}-й квартал {match[1]} (укрупнено)",
            f"Q{match[2]} {match[1]} (generalized)",
        )
    if YEAR_RE.fullmatch(code):
        return f"{code} год (укрупнено)", f"{code} (generalized)"
    if code == ANY:
        return ANY_LABEL
    return code, code


# Labels of the generalized codes, for the codebook.
GENERALIZED_LABELS: dict[str, dict[str, tuple[str, str]]] = {
    "region": {
        "moscow_spb": ("Москва или Санкт-Петербург (с областями)", "Moscow or Saint Petersburg"),
        "other": ("Другой регион России или за её пределами", "Other region of Russia or abroad"),
    },
    "industry": {
        "it_finance": ("ИТ, телеком, финансы", "IT, telecoms, finance"),
        "industry_energy": ("Производство и энергетика", "Manufacturing and energy"),
        "trade_logistics": ("Торговля, FMCG, логистика", "Trade, FMCG, logistics"),
        "services": ("Консалтинг, фармацевтика, здравоохранение", "Consulting, pharma, healthcare"),
        "public_other": ("Госсектор, образование, НКО, другое", "Public sector, education, other"),
    },
    "company_size": {
        "lt250": ("Меньше 250", "Fewer than 250"),
        "250_4999": ("250–4 999", "250–4,999"),
        "250plus": ("250 и больше", "250 or more"),
    },
    "experience_band": {
        "lt6": ("Меньше 6 лет", "Less than 6 years"),
        "6_20": ("6–20 лет", "6–20 years"),
        "6plus": ("6 лет и больше", "6 years or more"),
    },
    "current_employer": {"other": ("Свой бизнес или не работаю", "Own business or not working")},
    "role_level": {"manager": ("Руководитель (линейный или среднего звена)", "Manager")},
    "job_function": {
        NON_SALES: (
            "Не продажи (HR, ИТ, финансы, операции, другое)",
            "Not sales (HR, IT, finance, operations, other)",
        )
    },
    **{
        name: {BEFORE_2022: ("До 2022 года", "Before 2022")}
        for name in KIND_QUASI_IDENTIFIERS
        if name.endswith("last_year")
    },
    "language": {},
    "wave": {},
    "channel": {},
}
for _variable in (
    "region",
    "current_employer",
    "industry",
    "role_level",
    "job_function",
    *KIND_QUASI_IDENTIFIERS,
    "language",
    "wave",
    "channel",
):
    GENERALIZED_LABELS.setdefault(_variable, {})[ANY] = ANY_LABEL


class ExportRefused(Exception):
    """Reaching k-anonymity would suppress more than the allowed share of values."""


@dataclass
class DisclosurePlan:
    """How raw quasi-identifier combinations are released."""

    quasi_identifiers: tuple[str, ...]
    k: int
    records: int
    mapping: dict[tuple, tuple] = field(repr=False)
    generalized: list[str] = field(default_factory=list)
    suppressed_values: int = 0
    suppressed_records: int = 0
    fully_suppressed_records: int = 0
    max_suppressed_share: float = DEFAULT_MAX_SUPPRESSED_SHARE
    structural: tuple[str, ...] = ()
    level: int = 0  # generalization steps applied (a prefix of the applicable steps)
    _counts: dict[tuple, int] = field(default_factory=dict, repr=False)

    @property
    def blank(self) -> tuple:
        """The released combination of a fully suppressed record."""
        return tuple(SUPPRESSED for _ in self.quasi_identifiers)

    @property
    def suppressed_share(self) -> float:
        """Suppressed values as a share of all quasi-identifier values."""
        total = self.records * len(self.quasi_identifiers)
        return self.suppressed_values / total if total else 0.0

    def smallest_class(self) -> int | None:
        """Size of the smallest released combination that is not fully suppressed."""
        sizes = _released_counts(self._counts, self.mapping)
        real = [n for combo, n in sizes.items() if combo != self.blank]
        return min(real) if real else None

    def released_codes(self, variable: str) -> set[str]:
        """Every code this plan releases for ``variable`` (unanswered left out)."""
        i = self.quasi_identifiers.index(variable)
        return {released[i] for released in self.mapping.values() if released[i] is not None}

    def report(self) -> dict:
        """The disclosure-control report that travels with every export."""
        return {
            "method": "global recoding (generalization) then local suppression, "
            "computed on quasi-identifier combination counts",
            "quasi_identifiers": list(self.quasi_identifiers),
            "structural_quasi_identifiers": list(self.structural),
            "answer_structure": (
                "The answer columns reveal worked_in (a kind of company never worked in has "
                "only empty, not-applicable answers) and answer_scale (the codes of the scale "
                "each answer was given on), so these are never suppressed or generalized on "
                "their own and stay in every released combination. A fully suppressed record "
                "has every answer cell released as the suppressed code too, in responses.csv "
                "and answers_long.csv (one row per practice and kind)."
            ),
            "withheld_background": [
                kind_field(kind, name)
                for kind in COMPANY_KINDS
                for name in KIND_FIELDS
                if name not in RELEASED_KIND_FIELDS
            ],
            "k_required": self.k,
            "k_achieved": self.smallest_class(),
            "records": self.records,
            "generalized": list(dict.fromkeys(g.split(" ")[0] for g in self.generalized)),
            "generalization_steps": self.generalized,
            "suppressed_values": self.suppressed_values,
            "suppressed_records": self.suppressed_records,
            "fully_suppressed_records": self.fully_suppressed_records,
            "answers_withheld_records": self.fully_suppressed_records,
            "suppressed_share": round(self.suppressed_share, 6),
            "max_suppressed_share": self.max_suppressed_share,
            "suppressed_code": SUPPRESSED,
            "removed": [
                "names, e-mail, IP address, user agent (never collected)",
                "resume tokens and database ids (respondent_id is a separate random id)",
                "exact dates (only the submission month, generalized to a quarter or a year "
                "or suppressed where it would single anyone out)",
                "free-text examples unless explicitly requested, then scrubbed of "
                "e-mail addresses, phone numbers and URLs",
            ],
        }


def _released_counts(counts: dict[tuple, int], mapping: dict[tuple, tuple]) -> Counter:
    sizes: Counter = Counter()
    for raw, n in counts.items():
        sizes[mapping[raw]] += n
    return sizes


def _suppress(counts, mapping, k, index, order, keep, blank, limit=None):
    """Local suppression: rare records lose values one variable at a time, then all but the
    structural ones (``keep``, positions), then all. Returns the released mapping, the
    records touched and the number of values suppressed, or None as soon as that number
    reaches ``limit`` (a release that cannot beat one already found).

    Class sizes are kept up to date as records move: only records of a class smaller than
    k ever move, and a class of k or more only grows, so the next rare records are always
    among those that just moved.
    """
    mapping = dict(mapping)
    sizes = _released_counts(counts, mapping)
    touched: set[tuple] = set()
    suppressed = 0
    rare = [raw for raw in counts if sizes[mapping[raw]] < k]
    for variable in order:  # one value each: the common case, kept lean
        if not rare:
            break
        i = index[variable]
        for raw in rare:
            rel = mapping[raw]
            new = rel[:i] + (SUPPRESSED,) + rel[i + 1 :]
            n = counts[raw]
            if rel[i] != SUPPRESSED:
                suppressed += n
            sizes[rel] -= n
            sizes[new] += n
            mapping[raw] = new
        touched.update(rare)
        if limit is not None and suppressed >= limit:
            return None
        rare = [raw for raw in rare if sizes[mapping[raw]] < k]
    for final in (False, True):
        rare = [raw for raw in rare if sizes[mapping[raw]] < k and mapping[raw] != blank]
        for raw in rare:
            rel = mapping[raw]
            new = (
                blank if final else tuple(v if i in keep else SUPPRESSED for i, v in enumerate(rel))
            )
            n = counts[raw]
            suppressed += n * sum(1 for a, b in zip(rel, new, strict=True) if a != b)
            sizes[rel] -= n
            sizes[new] += n
            mapping[raw] = new
        touched.update(rare)
    return mapping, touched, suppressed


def _levels(counts, steps, index):
    """Each generalization level in turn: (level, combination counts, steps applied).

    Records alike once generalized are alike to local suppression, so each level is the
    table of generalized combinations and their counts (a few hundred at the broad levels
    instead of one per distinct record).
    """
    grouped: Counter = Counter({tuple(raw): n for raw, n in counts.items()})
    generalized: list[str] = []
    yield 0, grouped, generalized
    for current, (variable, step) in enumerate(steps, 1):
        i = index[variable]
        coarser = {v: recode(step, v) for v in {combo[i] for combo in grouped}}
        if any(coded != v for v, coded in coarser.items()):  # else nothing to regroup
            regrouped: Counter = Counter()
            for combo, n in grouped.items():
                regrouped[combo[:i] + (coarser[combo[i]],) + combo[i + 1 :]] += n
            grouped = regrouped
        name = variable if variable not in generalized else f"{variable} (broader)"
        generalized = [*generalized, name]
        yield current, grouped, generalized


def plan(
    counts: dict[tuple, int],
    quasi_identifiers: tuple[str, ...],
    k: int = DEFAULT_K,
    max_suppressed_share: float = DEFAULT_MAX_SUPPRESSED_SHARE,
    generalize_above: float = 0.02,
    suppression_order: tuple[str, ...] | None = None,
    structural: tuple[str, ...] = STRUCTURAL,
    level: int | None = None,
    generalizations: tuple[tuple[str, Recode], ...] = GENERALIZATIONS,
) -> DisclosurePlan:
    """Decide generalization and suppression so every released combination occurs >= k times.

    ``counts`` maps raw combinations (tuples in ``quasi_identifiers`` order, ``None`` for
    unanswered) to their number of records. Generalization steps (:data:`GENERALIZATIONS`)
    are applied one at a time, and after each the local suppression still needed is
    worked out (rare records lose values one variable at a time, in ``suppression_order``,
    then all but the ``structural`` ones, then entirely). The least generalized release
    whose suppression stays within ``generalize_above`` of the values is chosen; failing
    that, the one with the least suppression. ``level`` fixes the number of steps instead
    (to code a second set of records like a first one); ``generalizations`` replaces the
    hierarchy (to weigh another release policy on the same counts). Raises
    :class:`ExportRefused` when the suppression exceeds ``max_suppressed_share``.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    index = {name: i for i, name in enumerate(quasi_identifiers)}
    records = sum(counts.values())
    total_values = max(records * len(quasi_identifiers), 1)
    blank = tuple(SUPPRESSED for _ in quasi_identifiers)
    structural = tuple(v for v in structural if v in index)
    keep = {index[v] for v in structural}
    order = suppression_order or SUPPRESSION_ORDER
    order = tuple(dict.fromkeys(v for v in order if v in index and v not in structural))
    steps = [(v, r) for v, r in generalizations if v in index and v not in structural]
    if level is not None and not 0 <= level <= len(steps):
        raise ValueError(f"level must be between 0 and {len(steps)}")
    allowance = generalize_above * total_values

    def suppress(grouped, limit=None):
        same = {combo: combo for combo in grouped}
        return _suppress(grouped, same, k, index, order, keep, blank, limit)

    # Only the best level so far and the latest are held; the raw records are mapped once,
    # for the chosen level (a mapping per level multiplied the export's memory).
    best = None
    levels = _levels(counts, steps, index)
    if level is not None:
        for current, grouped, generalized in levels:
            if current == level:
                best = (*suppress(grouped), current, generalized)
                break
    else:
        # The least generalized level within the allowance. A level with more rare records
        # than the allowance cannot be within it (each rare record loses a value at least),
        # so its suppression is not even worked out.
        for current, grouped, generalized in levels:
            if sum(n for c, n in grouped.items() if n < k and c != blank) > allowance:
                continue
            found = suppress(grouped)
            if found[2] <= allowance:
                best = (*found, current, generalized)
                break
        if best is None:  # none is: the least suppression, the earliest level on ties
            for current, grouped, generalized in _levels(counts, steps, index):
                found = suppress(grouped, limit=best[2] if best else None)
                if found is not None and (best is None or found[2] < best[2]):
                    best = (*found, current, generalized)
                del found
    released, touched, suppressed, current, generalized = best
    # The chosen steps, composed per variable and worked out once per distinct value.
    coders: dict[int, dict] = {}
    for variable, step in steps[:current]:
        i = index[variable]
        coder = coders.setdefault(i, {v: v for v in {raw[i] for raw in counts}})
        for value, coded in coder.items():
            coder[value] = recode(step, coded)
    mapping: dict[tuple, tuple] = {}
    touched_records = 0
    for raw, n in counts.items():
        combo = list(raw)
        for i, coder in coders.items():
            combo[i] = coder[combo[i]]
        combo = tuple(combo)
        mapping[raw] = released[combo]
        touched_records += n if combo in touched else 0
    result = DisclosurePlan(
        quasi_identifiers=quasi_identifiers,
        k=k,
        records=records,
        mapping=mapping,
        generalized=generalized,
        suppressed_values=suppressed,
        suppressed_records=touched_records,
        fully_suppressed_records=sum(n for raw, n in counts.items() if mapping[raw] == blank),
        max_suppressed_share=max_suppressed_share,
        structural=structural,
        level=current,
        _counts=counts,  # the caller's: held, never changed
    )
    if result.suppressed_share > max_suppressed_share:
        raise ExportRefused(
            f"Reaching {k}-anonymity would suppress {result.suppressed_share:.1%} of the "
            f"quasi-identifier values (background, wave, channel, month, language; limit "
            f"{max_suppressed_share:.0%}). The sample is too small "
            "or too varied for a safe release: wait for more responses, export a narrower "
            "set, or raise the limit deliberately."
        )
    return result
