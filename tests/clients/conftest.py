"""The real-client suite needs the clients themselves (``tox -e clients``).

Without them the suite is skipped on a developer's machine and fails in CI
(``CI=true``). Each module shares one real service (noauth2: the token
``admin`` is an admin, any other token is not; sqlite driver; timers off),
and every test starts from an empty cache.
"""

import contextlib
import importlib.util
import os
import sqlite3
import sys

import pytest

from tests import clients
from tests.support import caches
from tests.support import env
from tests.support import running

#: What ``tox -e clients`` installs: each pin and the module it provides.
PINS = {'python-glanceclient==4.13.0': 'glanceclient',
        'openstacksdk==4.22.0': 'openstack',
        'python-openstackclient==10.5.0': 'openstackclient',
        'tempest==47.0.0': 'tempest'}


def _missing():
    missing = [pin for pin, module in PINS.items()
               if importlib.util.find_spec(module) is None]
    scripts = os.path.dirname(sys.executable)
    return missing + ['the %s console script' % name
                      for name in ('glance', 'openstack')
                      if not os.access(os.path.join(scripts, name), os.X_OK)]


def pytest_collection_modifyitems(config, items):
    missing = _missing()
    if not missing:
        return
    message = ('the real-client suite needs %s: run it with "tox -e '
               'clients"' % ', '.join(missing))
    if env.in_ci():
        raise pytest.UsageError(message)
    for item in items:
        item.add_marker(pytest.mark.skip(reason=message))


@pytest.fixture(scope='module')
def service(tmp_path_factory):
    """One real cache-maint for the module, on a cache of its own."""
    workdir = tmp_path_factory.mktemp('service')
    daemon = running.Daemon(workdir, workdir / 'cache',
                            image_cache_max_size=clients.MAX_SIZE,
                            cache_prune_interval=0, cache_clean_interval=0)
    daemon.cache = caches.SqliteCache(daemon.cache_dir)
    daemon.start()
    yield daemon
    daemon.stop()


@pytest.fixture(scope='module')
def endpoint(service):
    """The service's root URL, as an operator gives it to a client."""
    return service.url('')


@pytest.fixture(scope='module')
def home(tmp_path_factory):
    """A HOME of the module's own, for what the clients cache there."""
    return tmp_path_factory.mktemp('home')


@pytest.fixture
def cache(service):
    """The service's cache, emptied: no image, record, queue or leftover."""
    cache = service.cache
    images = cache.images()
    for sub in ('', 'queue', 'invalid', 'incomplete'):
        for name in cache.listdir(sub):
            if sub or name in images:
                os.unlink(os.path.join(cache.path, sub, name))
    with contextlib.closing(sqlite3.connect(cache.db_path)) as conn, conn:
        conn.execute('DELETE FROM cached_images')
    assert clients.state(cache) == clients.State()
    return cache


@pytest.fixture
def filled(cache):
    """The emptied cache, filled with one of everything."""
    return clients.fill(cache)
