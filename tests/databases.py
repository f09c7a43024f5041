"""Scratch databases on the real PostgreSQL and MariaDB servers.

Each test run creates its own database and drops it afterwards. A server
that cannot be reached skips the tests that need it on a developer's
machine, and fails them in CI (``CI=true``), where the servers must be up.
"""

import os
import uuid

import pytest
import sqlalchemy as sa

SERVERS = {
    'postgresql': os.environ.get(
        'CACHE_MAINT_TEST_POSTGRESQL',
        'postgresql+psycopg://postgres@127.0.0.1:5432/postgres'),
    'mysql': os.environ.get(
        'CACHE_MAINT_TEST_MYSQL', 'mysql+pymysql://root@127.0.0.1:3306/'),
}


def _unreachable(kind, error):
    message = ('%s server at %s is unreachable: %s'
               % (kind, SERVERS[kind], error))
    if os.environ.get('CI', '').lower() == 'true':
        pytest.fail(message)
    pytest.skip(message)


def create_database(kind):
    """Create a scratch database on server ``kind``; return its URL."""
    name = 'cache_maint_test_%s' % uuid.uuid4().hex[:12]
    admin_url = sa.engine.make_url(SERVERS[kind])
    engine = sa.create_engine(admin_url, isolation_level='AUTOCOMMIT')
    try:
        with engine.connect() as conn:
            conn.execute(sa.text('CREATE DATABASE %s' % name))
    except sa.exc.OperationalError as e:
        _unreachable(kind, e.orig)
    finally:
        engine.dispose()
    return admin_url.set(database=name).render_as_string(hide_password=False)


def drop_database(url):
    """Drop a database made by create_database."""
    url = sa.engine.make_url(url)
    kind = url.get_backend_name()
    engine = sa.create_engine(SERVERS[kind], isolation_level='AUTOCOMMIT')
    try:
        with engine.connect() as conn:
            if kind == 'postgresql':
                conn.execute(sa.text('DROP DATABASE IF EXISTS %s WITH (FORCE)'
                                     % url.database))
            else:
                conn.execute(sa.text('DROP DATABASE IF EXISTS %s'
                                     % url.database))
    finally:
        engine.dispose()
