"""The compatibility suite needs Glance 33 itself (``tox -e compat``).

Without it the suite is skipped on a developer's machine and fails in CI.
"""

import importlib.util
import uuid

import pytest

from tests.support import databases as scratch
from tests.support import env


def pytest_collection_modifyitems(config, items):
    if importlib.util.find_spec('glance') is not None:
        return
    message = ('the compatibility suite needs glance==33.0.0: run it with '
               '"tox -e compat"')
    if env.in_ci():
        raise pytest.UsageError(message)
    for item in items:
        item.add_marker(pytest.mark.skip(reason=message))


def require_server(kind):
    if not scratch.server_available(kind):
        env.unavailable('%s test server is not running' % kind)


@pytest.fixture
def databases(tmp_path):
    """new(kind, how='models') -> URL of a database with Glance's tables.

    ``kind`` is sqlite, postgresql or mysql; all are dropped afterwards.
    """
    from tests.support import glance as glance_harness
    drops = []

    def new(kind, how='models'):
        if kind == 'sqlite':
            url = glance_harness.sqlite_url(
                tmp_path / ('glance-%s.db' % uuid.uuid4().hex[:8]))
        else:
            require_server(kind)
            url = glance_harness.create_database(kind)
            drops.append(url)
        glance_harness.create_cache_tables(url, how=how)
        return url

    yield new
    for url in drops:
        glance_harness.drop_database(url)
