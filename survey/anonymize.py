"""Statistical disclosure control for exports: generalize, then suppress, to reach k-anonymity.

Works on the table of quasi-identifier combinations (one row per distinct combination
with its count, from a SQL GROUP BY), never on the microdata, so it costs the same for
a hundred or a million responses. Suppressed values are released as ``SUPPRESSED``;
a record whose combination still occurs fewer than k times has all its quasi-identifiers
suppressed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

SUPPRESSED = "suppressed"

# Generalization steps, applied globally and in this order while too many records are rare.
# Each maps a variable's codes to coarser codes; unlisted codes stay as they are.
GENERALIZATIONS: tuple[tuple[str, dict[str, str]], ...] = (
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
)

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
    },
    "experience_band": {
        "lt6": ("Меньше 6 лет", "Less than 6 years"),
        "6_20": ("6–20 лет", "6–20 years"),
    },
    "current_employer": {"other": ("Свой бизнес или не работаю", "Own business or not working")},
    "role_level": {"manager": ("Руководитель (линейный или среднего звена)", "Manager")},
}


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
    max_suppressed_share: float = 0.1

    @property
    def suppressed_share(self) -> float:
        """Suppressed values as a share of all quasi-identifier values."""
        total = self.records * len(self.quasi_identifiers)
        return self.suppressed_values / total if total else 0.0

    def smallest_class(self) -> int | None:
        """Size of the smallest released combination that is not fully suppressed."""
        sizes = Counter()
        for raw, released in self.mapping.items():
            sizes[released] += self._counts.get(raw, 0)
        blank = tuple(SUPPRESSED for _ in self.quasi_identifiers)
        real = [n for combo, n in sizes.items() if combo != blank]
        return min(real) if real else None

    _counts: dict[tuple, int] = field(default_factory=dict, repr=False)

    def report(self) -> dict:
        """The disclosure-control report that travels with every export."""
        return {
            "method": "global recoding (generalization) then local suppression, "
            "computed on quasi-identifier combination counts",
            "quasi_identifiers": list(self.quasi_identifiers),
            "k_required": self.k,
            "k_achieved": self.smallest_class(),
            "records": self.records,
            "generalized": self.generalized,
            "suppressed_values": self.suppressed_values,
            "suppressed_records": self.suppressed_records,
            "fully_suppressed_records": self.fully_suppressed_records,
            "suppressed_share": round(self.suppressed_share, 6),
            "max_suppressed_share": self.max_suppressed_share,
            "suppressed_code": SUPPRESSED,
            "removed": [
                "names, e-mail, IP address, user agent (never collected)",
                "resume tokens and database ids (respondent_id is a separate random id)",
                "exact dates (only the submission month is released)",
                "free-text examples unless explicitly requested, then scrubbed of "
                "e-mail addresses, phone numbers and URLs",
            ],
        }


def _released_counts(counts: dict[tuple, int], mapping: dict[tuple, tuple]) -> Counter:
    sizes: Counter = Counter()
    for raw, n in counts.items():
        sizes[mapping[raw]] += n
    return sizes


def _rare_records(counts, mapping, k) -> int:
    sizes = _released_counts(counts, mapping)
    return sum(n for raw, n in counts.items() if sizes[mapping[raw]] < k)


def plan(
    counts: dict[tuple, int],
    quasi_identifiers: tuple[str, ...],
    k: int = 5,
    max_suppressed_share: float = 0.1,
    generalize_above: float = 0.02,
    suppression_order: tuple[str, ...] | None = None,
) -> DisclosurePlan:
    """Decide generalization and suppression so every released combination occurs >= k times.

    Parameters: ``counts`` maps raw combinations (tuples in ``quasi_identifiers`` order,
    ``None`` for unanswered) to their number of records. Generalization steps are applied
    while more than ``generalize_above`` of the records sit in combinations rarer than k;
    the remaining rare records then lose values one variable at a time
    (``suppression_order``). Raises :class:`ExportRefused` when the suppressed share of
    values would exceed ``max_suppressed_share``.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    index = {name: i for i, name in enumerate(quasi_identifiers)}
    records = sum(counts.values())
    mapping = {raw: tuple(raw) for raw in counts}
    generalized = []
    for variable, recode in GENERALIZATIONS:
        if records == 0 or _rare_records(counts, mapping, k) <= generalize_above * records:
            break
        if variable not in index:
            continue
        i = index[variable]
        mapping = {
            raw: rel[:i] + (recode.get(rel[i], rel[i]),) + rel[i + 1 :]
            for raw, rel in mapping.items()
        }
        generalized.append(variable)
    order = suppression_order or tuple(v for v, _ in GENERALIZATIONS if v in index)
    order = tuple(v for v in order if v in index)
    touched: set[tuple] = set()
    for variable in order:
        sizes = _released_counts(counts, mapping)
        rare = [raw for raw in counts if sizes[mapping[raw]] < k]
        if not rare:
            break
        i = index[variable]
        for raw in rare:
            rel = mapping[raw]
            mapping[raw] = rel[:i] + (SUPPRESSED,) + rel[i + 1 :]
            touched.add(raw)
    sizes = _released_counts(counts, mapping)
    blank = tuple(SUPPRESSED for _ in quasi_identifiers)
    fully = 0
    for raw in counts:
        if sizes[mapping[raw]] < k and mapping[raw] != blank:
            mapping[raw] = blank
            touched.add(raw)
    suppressed_values = 0
    for raw in touched:
        rel = mapping[raw]
        suppressed_values += counts[raw] * sum(
            1 for a, b in zip(raw, rel, strict=True) if b == SUPPRESSED and a != SUPPRESSED
        )
        if rel == blank:
            fully += counts[raw]
    result = DisclosurePlan(
        quasi_identifiers=quasi_identifiers,
        k=k,
        records=records,
        mapping=mapping,
        generalized=generalized,
        suppressed_values=suppressed_values,
        suppressed_records=sum(counts[raw] for raw in touched),
        fully_suppressed_records=fully,
        max_suppressed_share=max_suppressed_share,
        _counts=dict(counts),
    )
    if result.suppressed_share > max_suppressed_share:
        raise ExportRefused(
            f"Reaching {k}-anonymity would suppress {result.suppressed_share:.1%} of the "
            f"background values (limit {max_suppressed_share:.0%}). The sample is too small "
            "or too varied for a safe release: wait for more responses, export a narrower "
            "set, or raise the limit deliberately."
        )
    return result
