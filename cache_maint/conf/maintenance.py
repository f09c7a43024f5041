"""When the periodic clean and prune tasks run, and where cache-maint keeps
what it must remember between runs (the ``[maintenance]`` group)."""

import os.path

from oslo_config import cfg

maintenance_opts = [
    cfg.IntOpt(
        'cache_clean_interval',
        default=86400,
        min=0,
        help="""
Seconds between two periodic cleans of the image cache (removal of failed
downloads in ``invalid/`` and stalled ones in ``incomplete/``). 0 disables
the periodic clean; ``POST /v2/cache/clean`` still works.
"""),
    cfg.IntOpt(
        'cache_prune_interval',
        default=1800,
        min=0,
        help="""
Seconds between two periodic prunes of the image cache (eviction of the least
recently used images until the cache is no larger than
``image_cache_max_size``). 0 disables the periodic prune;
``POST /v2/cache/prune`` still works.
"""),
]


GROUP = 'maintenance'

#: The state directory's name inside the cache directory, by default.
#: glance-api counts, lists and deletes only regular files there (and the
#: entries of incomplete/, invalid/ and queue/): a directory of another
#: name is never taken for an image.
DEFAULT_STATE_DIR_NAME = '.cache-maint'

state_opts = [
    cfg.StrOpt(
        'state_dir',
        sample_default='<image_cache_dir>/.cache-maint',
        help="""
Directory where cache-maint keeps its own state: the pinned images, the
record of runs (``GET /v2/cache/runs``, including those of
``cache-maint-manage``) and the images it evicted recently (so that it can
tell when glance-api had to download one again). By default it is
``.cache-maint`` inside ``image_cache_dir``, a directory glance-api never
counts, lists or deletes; it is created when first needed, readable by its
owner only. Set it to keep the state elsewhere; its parent must exist and
be writable by the user cache-maint runs as.
"""),
]


reconcile_opts = [
    cfg.IntOpt(
        'reconcile_interval',
        default=86400,
        min=0,
        help="""
Seconds between two full reconciliations of this node's records with the
files of its cache, with the ``centralized_db`` driver (the other drivers
keep their records on the node itself, and every clean reads them all).
Clean deletes the records whose file is gone. Reading all of this node's
records from Glance's shared ``cached_images`` table costs, on PostgreSQL,
a read of every node's rows; so a clean reconciles fully only the first
time, and then once this many seconds have passed since the last full
reconciliation. In between, it looks up only the images this node was seen
to cache (by the last clean or prune) and no longer has, and those prune
evicted since: a record that glance-api made and left without its file
between two of these looks waits for the next full reconciliation. 0 makes
every clean a full reconciliation.
"""),
]


def register_opts(conf):
    conf.register_opts(maintenance_opts)
    conf.register_opts(state_opts + reconcile_opts, group=GROUP)


def default_state_dir(cache_dir):
    """The state directory of a cache whose configuration names none."""
    return os.path.join(cache_dir, DEFAULT_STATE_DIR_NAME)


def state_dir(conf):
    """The state directory ``conf`` names, its default resolved."""
    return (conf.maintenance.state_dir
            or default_state_dir(conf.image_cache_dir))


def list_opts():
    return {'DEFAULT': maintenance_opts, GROUP: state_opts + reconcile_opts}
