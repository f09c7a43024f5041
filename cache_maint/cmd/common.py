"""What every command does first: parse and check the configuration."""

import sys

from oslo_config import cfg
from oslo_log import log as logging

from cache_maint import conf as cm_conf
from cache_maint import exception


def load_config(argv, cli_opts=()):
    """A fresh, checked ConfigOpts with logging set up; exit on error."""
    conf = cfg.ConfigOpts()
    cm_conf.register_opts(conf)
    conf.register_cli_opts(cli_opts)
    try:
        conf(argv, project='cache-maint')
        cm_conf.check(conf)
    except (cfg.Error, exception.ConfigError) as e:
        sys.exit('cache-maint: configuration error: %s' % e)
    logging.setup(conf, 'cache-maint')
    return conf
