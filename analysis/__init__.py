"""Statistics for the survey: pure functions over pandas count tables.

Count tables come from SQL aggregation; nothing here reads microdata or imports the web
application.
"""

from analysis.compare import (
    ASSUMPTIONS,
    ASSUMPTIONS_RU,
    assumptions_text,
    compare,
    multiple_testing,
)
from analysis.paired import mcnemar_exact_p, mcnemar_paired, newcombe_paired_ci
from analysis.proportions import cohens_h, compare_independent, prevalence, wilson_ci
from analysis.ratings import (
    mann_whitney_from_counts,
    median_from_counts,
    rating_summary,
    wilcoxon_from_counts,
)

__all__ = [
    "ASSUMPTIONS",
    "ASSUMPTIONS_RU",
    "assumptions_text",
    "cohens_h",
    "compare",
    "compare_independent",
    "mann_whitney_from_counts",
    "mcnemar_exact_p",
    "mcnemar_paired",
    "median_from_counts",
    "multiple_testing",
    "newcombe_paired_ci",
    "prevalence",
    "rating_summary",
    "wilcoxon_from_counts",
    "wilson_ci",
]
