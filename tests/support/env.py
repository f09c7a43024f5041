"""Where the tests run: in CI, what a test needs must be there."""

import os

import pytest


def in_ci():
    """True under CI (``CI=true``), where nothing may be skipped."""
    return os.environ.get('CI', '').lower() == 'true'


def unavailable(message):
    """Fail the test in CI; skip it on a developer's machine."""
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)
