"""Reports and dashboards: run suites of notebooks with Papermill, write artifacts, serve Voila."""
