"""Scratch databases on the real PostgreSQL and MariaDB servers.

Each test run creates its own database and drops it afterwards. A server
that cannot be reached skips the tests that need it on a developer's
machine, and fails them in CI (``CI=true``), where the servers must be up.
``CACHE_MAINT_TEST_POSTGRESQL`` and ``CACHE_MAINT_TEST_MYSQL`` point at
other servers, as SQLAlchemy URLs of an administrative connection.
"""

import contextlib
import os
import uuid

import sqlalchemy as sa

from tests.support import env

SERVERS = {
    'postgresql': os.environ.get(
        'CACHE_MAINT_TEST_POSTGRESQL',
        'postgresql+psycopg://postgres@127.0.0.1:5432/postgres'),
    'mysql': os.environ.get(
        'CACHE_MAINT_TEST_MYSQL', 'mysql+pymysql://root@127.0.0.1:3306/'),
}


def admin_url(kind, dbapi=None):
    """The administrative URL of server ``kind``, through ``dbapi``.

    ``dbapi`` names another driver for the same server: Glance's oslo.db
    uses ``psycopg2``, cache-maint ``psycopg``.
    """
    url = sa.engine.make_url(SERVERS[kind])
    if dbapi:
        url = url.set(drivername='%s+%s' % (url.get_backend_name(), dbapi))
    return url


def server_available(kind):
    """True if server ``kind`` answers now."""
    engine = sa.create_engine(SERVERS[kind])
    try:
        with engine.connect() as conn:
            conn.execute(sa.text('SELECT 1'))
        return True
    except sa.exc.DBAPIError:
        return False
    finally:
        engine.dispose()


def _execute(kind, statement):
    engine = sa.create_engine(SERVERS[kind], isolation_level='AUTOCOMMIT')
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(statement))
    finally:
        engine.dispose()


def create_database(kind, dbapi=None):
    """Create a scratch database on server ``kind``; return its URL."""
    name = 'cache_maint_test_%s' % uuid.uuid4().hex[:12]
    try:
        _execute(kind, 'CREATE DATABASE %s' % name)
    except sa.exc.OperationalError as e:
        env.unavailable('%s server at %s is unreachable: %s'
                        % (kind, SERVERS[kind], e.orig))
    return admin_url(kind, dbapi).set(database=name).render_as_string(
        hide_password=False)


def drop_database(url):
    """Drop a database made by create_database, even if in use."""
    url = sa.engine.make_url(url)
    kind = url.get_backend_name()
    force = ' WITH (FORCE)' if kind == 'postgresql' else ''
    _execute(kind, 'DROP DATABASE IF EXISTS %s%s' % (url.database, force))


@contextlib.contextmanager
def scratch_database(kind, dbapi=None):
    """Yield the URL of a new database, dropped on exit."""
    url = create_database(kind, dbapi)
    try:
        yield url
    finally:
        drop_database(url)


def central_url(server, tmp_path, server_urls):
    """A database for Glance's cache tables on ``server``.

    ``sqlite``: a file in ``tmp_path``. Otherwise the module's scratch
    database on that server, made on first use and kept in
    ``server_urls`` (the ``server_urls`` fixture drops it).
    """
    if server == 'sqlite':
        return 'sqlite:///%s' % (tmp_path / 'glance.db')
    if server not in server_urls:
        server_urls[server] = create_database(server)
    return server_urls[server]
