"""Fixtures shared by the functional tests of the real processes."""

import pytest

from tests.support import caches


@pytest.fixture
def cache(tmp_path):
    """An empty Glance sqlite cache in the test's own directory."""
    return caches.SqliteCache(tmp_path / 'cache')
