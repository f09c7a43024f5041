"""Fixtures shared by the functional tests of the real processes."""

import pytest

from tests.support import caches
from tests.support import running


@pytest.fixture
def cache(tmp_path):
    """An empty Glance sqlite cache in the test's own directory."""
    return caches.SqliteCache(tmp_path / 'cache')


@pytest.fixture
def daemons(tmp_path, cache):
    """Make Daemons on the test's cache; every one is stopped afterwards."""
    made = []

    def make(**options):
        daemon = running.Daemon(tmp_path, cache.path, **options)
        made.append(daemon)
        return daemon

    yield make
    for daemon in made:
        daemon.stop()
