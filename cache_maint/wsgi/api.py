"""``cache_maint.wsgi.api:application`` for an external WSGI server.

Serves the admin API only: the periodic tasks run in the ``cache-maint``
service. The configuration files are read from ``CACHE_MAINT_CONFIG_FILES``
(colon-separated), by default ``/etc/glance/glance-api.conf`` (if present)
then ``/etc/cache-maint/cache-maint.conf``.
"""

import os

from oslo_config import cfg
from oslo_log import log as logging

from cache_maint.api import deploy
from cache_maint import cache as cm_cache
from cache_maint import conf as cm_conf
from cache_maint import runs
from cache_maint import singleflight

DEFAULT_FILES = ('/etc/glance/glance-api.conf',
                 '/etc/cache-maint/cache-maint.conf')


def _config_files():
    configured = os.environ.get('CACHE_MAINT_CONFIG_FILES')
    if configured:
        return [path for path in configured.split(':') if path]
    return [path for path in DEFAULT_FILES if os.path.exists(path)]


def init_application():
    """Parse the configuration and build the API application."""
    conf = cfg.ConfigOpts()
    cm_conf.register_opts(conf)
    conf([], project='cache-maint', default_config_files=_config_files())
    cm_conf.check(conf)
    logging.setup(conf, 'cache-maint')
    cache = cm_cache.Cache.from_conf(conf)
    cache.setup()
    task_runner = runs.TaskRunner(conf, cache)
    return deploy.loadapp(conf, cache, task_runner,
                          singleflight.Flights(task_runner))


application = init_application()
