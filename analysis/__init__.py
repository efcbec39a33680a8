"""Statistics for the survey: pure functions over pandas count tables.

Count tables come from SQL aggregation; nothing here reads microdata or imports the web
application.
"""

from analysis.adjusted import adjusted_estimates
from analysis.compare import (
    ASSUMPTIONS,
    assumptions_text,
    compare,
    multiple_testing,
)
from analysis.overlap import (
    compare_overlapping,
    compare_overlapping_means,
    mean_rating_ci,
    overlap_groups,
    rank_biserial_ci,
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
    "adjusted_estimates",
    "assumptions_text",
    "cohens_h",
    "compare",
    "compare_independent",
    "compare_overlapping",
    "compare_overlapping_means",
    "mann_whitney_from_counts",
    "mean_rating_ci",
    "mcnemar_exact_p",
    "mcnemar_paired",
    "median_from_counts",
    "multiple_testing",
    "newcombe_paired_ci",
    "overlap_groups",
    "prevalence",
    "rank_biserial_ci",
    "rating_summary",
    "wilcoxon_from_counts",
    "wilson_ci",
]
