"""The schemas the tests build caches with are Glance 33's own.

``tests.support.glance_schema`` writes them out so that no test cache is
ever laid out by the code under test. Here Glance itself creates them,
its sqlite driver's table and its migration's two centralized_db tables,
and both are read back and compared column by column.
"""

import sqlite3
import uuid

import pytest

pytest.importorskip('glance.image_cache', reason='needs glance==33.0.0')

import sqlalchemy as sa  # noqa: E402

from tests.support import databases as scratch  # noqa: E402
from tests.support import glance as glance_harness  # noqa: E402
from tests.support import glance_schema  # noqa: E402


def _table_info(db_path):
    with sqlite3.connect(db_path) as conn:
        return conn.execute('PRAGMA table_info(cached_images)').fetchall()


def test_sqlite_table_is_glances(tmp_path):
    glance = glance_harness.GlanceImageCache(tmp_path / 'glance', 'sqlite')
    glance.close()
    ours = tmp_path / 'ours.db'
    with sqlite3.connect(ours) as conn:
        conn.executescript(glance_schema.SQLITE)
    assert _table_info(ours) == _table_info(tmp_path / 'glance' / 'cache.db')


def _described(url):
    """Every column, key and constraint of the two tables at ``url``."""
    engine = sa.create_engine(url)
    try:
        inspector = sa.inspect(engine)
        described = {}
        for table in ('node_reference', 'cached_images'):
            described[table] = {
                'columns': [(c['name'], str(c['type']), c['nullable'])
                            for c in inspector.get_columns(table)],
                'primary key': inspector.get_pk_constraint(table)[
                    'constrained_columns'],
                'unique': sorted(
                    (u['name'], tuple(u['column_names']))
                    for u in inspector.get_unique_constraints(table)),
                'foreign keys': sorted(
                    (tuple(f['constrained_columns']), f['referred_table'],
                     tuple(f['referred_columns']))
                    for f in inspector.get_foreign_keys(table)),
            }
        return described
    finally:
        engine.dispose()


@pytest.mark.parametrize('kind', ['sqlite', 'postgresql', 'mysql'])
def test_centralized_tables_are_glances(tmp_path, databases, kind):
    theirs = databases(kind, how='migration')
    if kind == 'sqlite':
        ours = 'sqlite:///%s' % (tmp_path / ('ours-%s.db'
                                             % uuid.uuid4().hex[:8]))
        glance_schema.create_central_tables(ours)
        assert _described(ours) == _described(theirs)
        return
    with scratch.scratch_database(kind, dbapi='psycopg2' if kind ==
                                  'postgresql' else None) as ours:
        glance_schema.create_central_tables(ours)
        assert _described(ours) == _described(theirs)
