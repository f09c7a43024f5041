"""The indexes of a shared cached_images table, made and unmade by hand.

Written here with plain SQL, never with the code under test, so that the
tests and the benchmark can set up each case the "Node index" check and
``cache-maint-manage db-index`` meet (the recommended index, another name
on the same columns, a half-built one) and put Glance's schema back after.
"""

import sqlalchemy as sa

from cache_maint.drivers import glance_tables

TABLE = 'cached_images'
NAME = glance_tables.NODE_LRU_INDEX_NAME
COLUMNS = tuple(glance_tables.NODE_LRU_INDEX_COLUMNS)

#: The indexes Glance's own schema gives cached_images (MariaDB's InnoDB
#: adds ``node_reference_id`` for the foreign key; PostgreSQL, the primary
#: key's).
GLANCE_INDEXES = {'ix_cached_images_image_id_node_reference_id',
                  'node_reference_id'}


def names(engine):
    """{index name: its columns} of cached_images."""
    return {index['name']: tuple(index['column_names'])
            for index in sa.inspect(engine).get_indexes(TABLE)}


def create(engine, name=NAME, columns=COLUMNS):
    """Create an index on cached_images, plainly."""
    with engine.begin() as conn:
        conn.execute(sa.text('CREATE INDEX %s ON %s (%s)'
                             % (name, TABLE, ', '.join(columns))))


def create_invalid(engine, name=NAME, columns=COLUMNS):
    """PostgreSQL: leave ``name`` half built, as an interrupted build does.

    A concurrent build whose predicate fails on the first row (a division
    by zero) leaves an invalid index behind; cached_images needs a row.
    """
    with engine.connect().execution_options(
            isolation_level='AUTOCOMMIT') as conn:
        try:
            conn.execute(sa.text(
                'CREATE INDEX CONCURRENTLY %s ON %s (%s) WHERE 1 / (size - '
                'size) = 0' % (name, TABLE, ', '.join(columns))))
        except sa.exc.DBAPIError:
            pass
        else:
            raise AssertionError('the index build did not fail')


def restore_glance_schema(engine):
    """Drop every index Glance's schema has not; put back InnoDB's own.

    On MariaDB, an index led by node_reference_id replaces the one InnoDB
    made for the foreign key, which then cannot be dropped alone: the
    foreign key's index comes back in the same statement.
    """
    found = names(engine)
    extra = [name for name in found if name not in GLANCE_INDEXES]
    if not extra:
        return
    with engine.begin() as conn:
        if engine.dialect.name == 'mysql':
            changes = ['DROP INDEX %s' % name for name in extra]
            if 'node_reference_id' not in found:
                changes.insert(0, 'ADD INDEX node_reference_id '
                                  '(node_reference_id)')
            conn.execute(sa.text('ALTER TABLE %s %s' % (TABLE,
                                                        ', '.join(changes))))
        else:
            for name in extra:
                conn.execute(sa.text('DROP INDEX %s' % name))
