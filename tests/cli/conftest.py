"""Fixtures shared by the CLI tests: a small demo data set and a fresh copy of the example project."""

from project_fixtures import data, project  # noqa: F401 - fixtures, found by name

