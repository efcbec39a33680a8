"""Statistics for the survey: pure functions over pandas count tables."""
