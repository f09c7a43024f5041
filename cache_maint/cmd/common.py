"""What every command does first: parse and check the configuration."""

import os
import sys

from oslo_config import cfg
from oslo_log import log as logging

from cache_maint import conf as cm_conf
from cache_maint import exception


def load_config(argv, cli_opts=(), conf_class=cfg.ConfigOpts,
                log_to_stderr=False):
    """A fresh, checked configuration with logging set up; exit on error."""
    conf = conf_class()
    cm_conf.register_opts(conf)
    conf.register_cli_opts(cli_opts)
    if log_to_stderr:
        # Keep stdout for the command's own output.
        conf.set_default('use_stderr', True)
    try:
        conf(argv, project='cache-maint')
        cm_conf.check(conf)
    except (cfg.Error, exception.ConfigError) as e:
        sys.exit('%s: configuration error: %s'
                 % (os.path.basename(sys.argv[0]) or 'cache-maint', e))
    logging.setup(conf, 'cache-maint')
    return conf
