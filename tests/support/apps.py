"""The API application in-process, over a real cache."""

from cache_maint.api import deploy
from cache_maint import cache as cm_cache
from cache_maint import runs
from cache_maint import singleflight


def make_app(conf):
    """The API application over the cache ``conf`` names, set up."""
    cache = cm_cache.Cache.from_conf(conf)
    cache.setup()
    runner = runs.TaskRunner(conf, cache)
    return deploy.loadapp(conf, cache, runner, singleflight.Flights(runner))
