"""Fixtures shared by the functional tests of the real processes."""

import pytest

from tests import base


@pytest.fixture
def cache(tmp_path):
    """An empty Glance sqlite cache in the test's own directory."""
    return base.SqliteCache(tmp_path / 'cache')
