"""Customer-level analytics: the feature table, cohorts, behavioural segments and drivers."""
