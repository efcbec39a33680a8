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
    # Second level: broad bands, then dropping the least analytic detail altogether.
    ("region", {"moscow_spb": "any", "other": "any"}),
    ("current_employer", {"ru": "any", "foreign": "any", "other": "any"}),
    ("experience_band", {"6_20": "6plus", "20plus": "6plus"}),
    ("company_size", {"250_4999": "250plus", "5000plus": "250plus"}),
    (
        "industry",
        {
            c: "any"
            for c in (
                "it_finance",
                "industry_energy",
                "trade_logistics",
                "services",
                "public_other",
            )
        },
    ),
    ("role_level", {"specialist": "any", "manager": "any", "executive": "any"}),
)
ANY_LABEL = ("любое (скрыто укрупнением)", "any (removed by generalization)")


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
}
for _variable in ("region", "current_employer", "industry", "role_level"):
    GENERALIZED_LABELS[_variable]["any"] = ANY_LABEL


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
            "generalized": list(dict.fromkeys(g.split(" ")[0] for g in self.generalized)),
            "generalization_steps": self.generalized,
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


def _suppress(counts, mapping, k, index, order, blank):
    """Local suppression: rare records lose values one variable at a time, then all."""
    mapping = dict(mapping)
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
    for raw in counts:
        if sizes[mapping[raw]] < k and mapping[raw] != blank:
            mapping[raw] = blank
            touched.add(raw)
    suppressed = sum(
        counts[raw]
        * sum(1 for a, b in zip(raw, mapping[raw], strict=True) if b == SUPPRESSED and a != b)
        for raw in touched
    )
    return mapping, touched, suppressed


def plan(
    counts: dict[tuple, int],
    quasi_identifiers: tuple[str, ...],
    k: int = 5,
    max_suppressed_share: float = 0.1,
    generalize_above: float = 0.02,
    suppression_order: tuple[str, ...] | None = None,
) -> DisclosurePlan:
    """Decide generalization and suppression so every released combination occurs >= k times.

    ``counts`` maps raw combinations (tuples in ``quasi_identifiers`` order, ``None`` for
    unanswered) to their number of records. Generalization steps (:data:`GENERALIZATIONS`)
    are applied one at a time, and after each the local suppression still needed is
    worked out (rare records lose values one variable at a time, in ``suppression_order``,
    then entirely). The least generalized release whose suppression stays within
    ``generalize_above`` of the values is chosen; failing that, the one with the least
    suppression. Raises :class:`ExportRefused` when even that exceeds
    ``max_suppressed_share``.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    index = {name: i for i, name in enumerate(quasi_identifiers)}
    records = sum(counts.values())
    total_values = max(records * len(quasi_identifiers), 1)
    blank = tuple(SUPPRESSED for _ in quasi_identifiers)
    order = suppression_order or tuple(v for v, _ in GENERALIZATIONS if v in index)
    order = tuple(dict.fromkeys(v for v in order if v in index))
    mapping = {raw: tuple(raw) for raw in counts}
    generalized: list[str] = []
    # Only the best candidate so far and the latest are kept: each holds a mapping of every
    # distinct combination (tens of thousands in a large study), so keeping all of them
    # multiplied the export's memory by the number of generalization steps.
    best = None
    steps = [(v, r) for v, r in GENERALIZATIONS if v in index]
    for level in range(len(steps) + 1):
        if level:
            variable, recode = steps[level - 1]
            i = index[variable]
            mapping = {
                raw: rel[:i] + (recode.get(rel[i], rel[i]),) + rel[i + 1 :]
                for raw, rel in mapping.items()
            }
            name = variable if variable not in generalized else f"{variable} (broader)"
            generalized = [*generalized, name]
        released, touched, suppressed = _suppress(counts, mapping, k, index, order, blank)
        latest = (suppressed, level, released, touched, generalized)
        if suppressed <= generalize_above * total_values:
            best = latest  # the least generalized release within the allowance
            break
        if best is None or suppressed < best[0]:
            best = latest  # otherwise the least suppression (the earliest level on ties)
        del released, touched, latest
    suppressed, _, mapping, touched, generalized = best
    result = DisclosurePlan(
        quasi_identifiers=quasi_identifiers,
        k=k,
        records=records,
        mapping=mapping,
        generalized=generalized,
        suppressed_values=suppressed,
        suppressed_records=sum(counts[raw] for raw in touched),
        fully_suppressed_records=sum(counts[raw] for raw in touched if mapping[raw] == blank),
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
