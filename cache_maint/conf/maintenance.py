"""When the periodic clean and prune tasks run."""

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


def register_opts(conf):
    conf.register_opts(maintenance_opts)


def list_opts():
    return {'DEFAULT': maintenance_opts}
