"""Glance's database, where the ``centralized_db`` driver keeps metadata.

The option keeps oslo.db's name and group, so glance-api.conf's own
``[database] connection`` is read as it is.
"""

from oslo_config import cfg

database_group = cfg.OptGroup(
    'database',
    title='Database options',
    help="Glance's database, for the centralized_db cache driver.")

database_opts = [
    cfg.StrOpt(
        'connection',
        secret=True,
        help="""
SQLAlchemy URL of Glance's database, e.g.
``mysql+pymysql://glance:secret@db.example.org/glance`` or
``postgresql+psycopg://glance:secret@db.example.org/glance``. Only the
``centralized_db`` driver uses it, and only Glance's ``node_reference`` and
``cached_images`` tables, and only this node's rows in them.
"""),
]


def register_opts(conf):
    conf.register_opts(database_opts, group=database_group.name)


def list_opts():
    return {database_group: database_opts}
