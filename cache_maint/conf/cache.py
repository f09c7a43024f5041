"""Glance's own image cache options, under Glance's names in [DEFAULT].

They keep Glance's names, types and defaults so that cache-maint can read
glance-api.conf as it is: every option glance-api.conf sets for its cache
means exactly the same thing here.
"""

from oslo_config import cfg

DRIVERS = (
    ('centralized_db', "Glance's own database: tables node_reference and "
                       "cached_images, one set of rows per node."),
    ('sqlite', 'A cache.db sqlite file inside the cache directory.'),
    ('xattr', 'Extended attributes of the cached files.'),
)

cache_opts = [
    cfg.StrOpt(
        'image_cache_dir',
        help="""
Base directory of the image cache, the same directory glance-api uses.

Complete images, and the ``incomplete``, ``invalid`` and ``queue``
subdirectories, live here. The directory must exist; cache-maint creates the
subdirectories inside it if they are missing, and never touches anything
outside it. This option has no default and must be set.
"""),
    cfg.IntOpt(
        'image_cache_max_size',
        default=10 * 1024 ** 3,
        min=0,
        help="""
Size, in bytes, above which a prune evicts the least recently used images.

This is a threshold for the prune task, not a hard limit: glance-api may
cache past it between two prunes.
"""),
    cfg.IntOpt(
        'image_cache_stall_time',
        default=86400,
        min=0,
        help="""
Age in seconds, by modification time, after which a file in ``incomplete/``
is a stalled download that clean removes.

A file written to within the last few seconds is a download in progress and
is never removed, whatever this value is.
"""),
    cfg.StrOpt(
        'image_cache_driver',
        default='centralized_db',
        choices=DRIVERS,
        ignore_case=True,
        help="""
Where the cache metadata lives: ``sqlite`` (a database file in the cache
directory), ``xattr`` (extended attributes of the cached files) or
``centralized_db`` (Glance's own database). Use the value glance-api uses.
"""),
    cfg.StrOpt(
        'image_cache_sqlite_db',
        default='cache.db',
        help="""
Path of the sqlite driver's database, relative to ``image_cache_dir``.
"""),
    cfg.StrOpt(
        'worker_self_reference_url',
        help="""
This node's URL as glance-api knows it; it names the node's rows in the
``centralized_db`` driver's tables.
"""),
]


def register_opts(conf):
    conf.register_opts(cache_opts)


def list_opts():
    return {'DEFAULT': cache_opts}
