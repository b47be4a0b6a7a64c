"""Fixtures of the workspace's Flask-client tests (defined in support.py, which some tests import)."""

from tests.integration.ui.support import billing_day  # noqa: F401
