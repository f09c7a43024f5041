"""Glance 33's cache schemas, written out here once.

A test cache is always laid out with Glance's own schema, never with the
code under test: ``SQLITE`` is the table Glance's sqlite driver creates
(glance/image_cache/drivers/sqlite.py), and the two tables below are those
of Glance's migration 2024_1_expand01 for centralized_db. The compat suite
proves both equal to what Glance 33 itself creates.
"""

import sqlalchemy as sa

SQLITE = """
CREATE TABLE IF NOT EXISTS cached_images (
    image_id TEXT PRIMARY KEY,
    last_accessed REAL DEFAULT 0.0,
    last_modified REAL DEFAULT 0.0,
    size INTEGER DEFAULT 0,
    hits INTEGER DEFAULT 0,
    checksum TEXT
);
"""

_KEY = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')

metadata = sa.MetaData()

node_reference = sa.Table(
    'node_reference', metadata,
    sa.Column('node_reference_id', _KEY, primary_key=True,
              autoincrement=True),
    sa.Column('node_reference_url', sa.String(255), nullable=False),
    sa.UniqueConstraint('node_reference_url',
                        name='uq_node_reference_node_reference_url'),
    mysql_engine='InnoDB', mysql_charset='utf8')

cached_images = sa.Table(
    'cached_images', metadata,
    sa.Column('id', _KEY, primary_key=True, autoincrement=True),
    sa.Column('image_id', sa.String(36), nullable=False),
    sa.Column('last_accessed', sa.DateTime(), nullable=False),
    sa.Column('last_modified', sa.DateTime(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('hits', sa.Integer(), nullable=False),
    sa.Column('checksum', sa.String(32), nullable=True),
    sa.Column('node_reference_id', _KEY,
              sa.ForeignKey('node_reference.node_reference_id'),
              nullable=False),
    sa.UniqueConstraint('image_id', 'node_reference_id',
                        name='ix_cached_images_image_id_node_reference_id'),
    mysql_engine='InnoDB', mysql_charset='utf8')


def create_central_tables(url):
    """Create Glance's node_reference and cached_images tables at ``url``."""
    engine = sa.create_engine(url)
    try:
        metadata.create_all(engine)
    finally:
        engine.dispose()
