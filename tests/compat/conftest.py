"""The compatibility suite needs Glance 33 itself (``tox -e compat``).

Without it the suite is skipped on a developer's machine and fails in CI.
"""

import importlib.util
import os
import uuid

import pytest


def pytest_collection_modifyitems(config, items):
    if importlib.util.find_spec('glance') is not None:
        return
    message = ('the compatibility suite needs glance==33.0.0: run it with '
               '"tox -e compat"')
    if os.environ.get('CI', '').lower() == 'true':
        raise pytest.UsageError(message)
    for item in items:
        item.add_marker(pytest.mark.skip(reason=message))


def require_server(kind):
    from tests.compat import glance_cache
    if not glance_cache.server_available(kind):
        message = '%s test server is not running' % kind
        if os.environ.get('CI', '').lower() == 'true':
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def databases(tmp_path):
    """new(kind, how='models') -> URL of a database with Glance's tables.

    ``kind`` is sqlite, postgresql or mysql; all are dropped afterwards.
    """
    from tests.compat import glance_cache
    drops = []

    def new(kind, how='models'):
        if kind == 'sqlite':
            url = glance_cache.sqlite_url(
                tmp_path / ('glance-%s.db' % uuid.uuid4().hex[:8]))
        else:
            require_server(kind)
            url = glance_cache.create_database(kind)
            drops.append(url)
        glance_cache.create_cache_tables(url, how=how)
        return url

    yield new
    for url in drops:
        glance_cache.drop_database(url)
