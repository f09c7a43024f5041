"""Glance's two cache tables, as its 2024.1 migration creates them.

Column types, keys and constraint names are Glance's own, so that tables
made by ``cache-maint-manage db-sync`` are the ones glance-api expects. In a
database Glance manages, these definitions are only read, never created.
"""

import sqlalchemy as sa

# BigInteger keys, except on SQLite, where only INTEGER autoincrements.
_KEY = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')

metadata = sa.MetaData()

node_reference = sa.Table(
    'node_reference', metadata,
    sa.Column('node_reference_id', _KEY, nullable=False, autoincrement=True),
    sa.Column('node_reference_url', sa.String(255), nullable=False),
    sa.PrimaryKeyConstraint('node_reference_id'),
    sa.UniqueConstraint('node_reference_url',
                        name='uq_node_reference_node_reference_url'),
    mysql_engine='InnoDB', mysql_charset='utf8')

cached_images = sa.Table(
    'cached_images', metadata,
    sa.Column('id', _KEY, nullable=False, autoincrement=True),
    sa.Column('image_id', sa.String(36), nullable=False),
    sa.Column('last_accessed', sa.DateTime(), nullable=False),
    sa.Column('last_modified', sa.DateTime(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('hits', sa.Integer(), nullable=False),
    sa.Column('checksum', sa.String(32), nullable=True),
    sa.Column('node_reference_id', _KEY, nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.ForeignKeyConstraint(['node_reference_id'],
                            ['node_reference.node_reference_id']),
    sa.UniqueConstraint('image_id', 'node_reference_id',
                        name='ix_cached_images_image_id_node_reference_id'),
    mysql_engine='InnoDB', mysql_charset='utf8')

TABLES = (node_reference, cached_images)

#: Tables only a Glance database has: their presence means Glance owns the
#: schema, and only ``glance-manage db sync`` may change it.
GLANCE_MARKERS = ('images', 'alembic_version')

#: The index cache-maint recommends, never imposes, on a shared
#: cached_images (``cache-maint-manage db-index``): Glance indexes the table
#: by (image_id, node_reference_id) only, so on PostgreSQL a node's own rows,
#: in LRU order, are found only by reading every node's. Its name says whose
#: it is; glance-manage's migrations neither know nor drop it.
NODE_LRU_INDEX_NAME = 'ix_cache_maint_cached_images_node_lru'
NODE_LRU_INDEX_COLUMNS = ('node_reference_id', 'last_accessed', 'id')
