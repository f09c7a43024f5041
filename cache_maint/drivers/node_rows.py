"""One node's rows of the shared ``cached_images``, found by image id.

Every node of a cloud keeps its rows in one table, which Glance indexes by
``(image_id, node_reference_id)`` only: on PostgreSQL nothing indexes
``node_reference_id``, so a read of "this node's rows" is a scan of every
node's. A node knows its image ids, though (the files of its cache, or ids
it saw before): looked up with both columns of that unique index, they cost
the rows this node has, whatever the number of nodes.

So the node's id is resolved once per operation (through node_reference's
unique URL index), and is bound as a value, never as a subquery, in
statements of a few ids each. PostgreSQL's planner weighs one index descent
per id against a sequential scan of the whole table: on 50,000 rows (715
pages) it took the index for 250 ids, and the scan for 500. With
``IDS_PER_STATEMENT`` ids a statement, it takes the index from tables of
some 20,000 rows on; a smaller table is read whole, a few hundred pages. On
2,000,000 rows, the statement size hardly matters (2,000 ids in 32-36 ms
with 100 to 1,000 a statement). MariaDB takes the unique index at any size.
"""

import datetime

import sqlalchemy as sa

from cache_maint.drivers import glance_tables as tables

#: Ids per statement that reads or deletes rows by image id (see above).
#: Several such statements may share one transaction.
IDS_PER_STATEMENT = 100

_images = tables.cached_images
_nodes = tables.node_reference

#: The columns of a record, and the row id that breaks LRU ties.
COLUMNS = (_images.c.id, _images.c.image_id, _images.c.last_accessed,
           _images.c.last_modified, _images.c.size, _images.c.hits)


def node_id(conn, url):
    """This node's node_reference_id, or None if it has none."""
    return conn.execute(sa.select(_nodes.c.node_reference_id).where(
        _nodes.c.node_reference_url == url)).scalar()


def batches(image_ids):
    """``image_ids`` in lists of IDS_PER_STATEMENT at most, sorted.

    Sorted, so that a statement's ids follow the index's own order.
    """
    size = IDS_PER_STATEMENT
    image_ids = sorted(set(image_ids))
    for start in range(0, len(image_ids), size):
        yield image_ids[start:start + size]


def rows_of(conn, node, image_ids, columns=COLUMNS):
    """The rows of ``node`` among ``image_ids``, in no particular order.

    ``columns`` include ``image_id``. Only rows whose id is one of
    ``image_ids`` exactly: MySQL's collations would also match another
    case, or trailing spaces.
    """
    if node is None:
        return []
    rows = []
    for batch in batches(image_ids):
        wanted = set(batch)
        rows += [row for row in conn.execute(sa.select(*columns).where(
            _images.c.image_id.in_(batch),
            _images.c.node_reference_id == node)) if row.image_id in wanted]
    return rows


def has_any(conn, node, image_ids, others=False):
    """True if ``node`` has a row of one of ``image_ids``.

    With ``others``, if any other node has one (``node`` None: any node).
    Answered by the unique index alone: one LIMIT 1 statement per batch,
    until the first row found.
    """
    if node is None and not others:
        return False
    if node is None:
        scope = ()
    elif others:
        scope = (_images.c.node_reference_id != node,)
    else:
        scope = (_images.c.node_reference_id == node,)
    for batch in batches(image_ids):
        found = conn.execute(sa.select(_images.c.id).where(
            _images.c.image_id.in_(batch), *scope).limit(1)).first()
        if found is not None:
            return True
    return False


def lru_sorted(rows):
    """``rows`` in Glance's LRU order: last access, then row id.

    The order ``ORDER BY last_accessed, id`` gives on the server: Python
    compares datetimes as the server does, and the row id (the caching
    order) breaks the ties of MySQL's whole-second DATETIMEs. A value that
    is no datetime (MySQL's zero date) sorts first, as it does there.
    """
    return sorted(rows, key=_lru_key)


def has_node_lru_index(engine):
    """True if cached_images has the index cache-maint recommends.

    Or another usable one led by the same columns (glance_tables'
    NODE_LRU_INDEX_COLUMNS): a node's rows, in LRU order, are then found
    without reading any other node's. Read from the schema.
    """
    wanted = tuple(tables.NODE_LRU_INDEX_COLUMNS)
    for index in sa.inspect(engine).get_indexes(_images.name):
        options = index.get('dialect_options', {})
        if (tuple(index['column_names'][:len(wanted)]) == wanted
                and not options.get('postgresql_invalid')
                and not options.get('postgresql_where')):
            return True
    return False


def lru_rows(conn, node, columns=COLUMNS):
    """Every row of ``node``, in LRU order, as the server sorts them.

    Cheap only with the recommended index (``has_node_lru_index``).
    """
    if node is None:
        return []
    return conn.execute(sa.select(*columns).where(
        _images.c.node_reference_id == node).order_by(
            _images.c.last_accessed, _images.c.id)).all()


def _lru_key(row):
    moment = row.last_accessed
    if not isinstance(moment, datetime.datetime):
        moment = datetime.datetime.min
    return moment, row.id
