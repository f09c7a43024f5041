"""``cache-maint-status upgrade check``: oslo.upgradecheck's command.

Run before a start or an upgrade, it checks what an operator gets wrong
(``cache_maint.upgrade_checks``) and changes nothing. Its exit status is
oslo.upgradecheck's: 0 success, 1 a warning, 2 a failure, 255 an error (a
configuration that cannot be read, or a check that crashed), with one line
on stderr for an error.
"""

import logging as std_logging
import os
import sys

from oslo_config import cfg
from oslo_upgradecheck import upgradecheck

from cache_maint.cmd import common
from cache_maint import exception
from cache_maint import upgrade_checks

PROJECT = 'cache-maint'


class _ConfigOpts(cfg.ConfigOpts):
    """What oslo.upgradecheck's ``main`` parses as every command does.

    Through ``common.parse``: with ``--version``, and a bad command line
    raised as a ConfigError, not argparse's exit with its own status 2
    (which would read as a check's failure).
    """

    def __call__(self, args=None, project=None, default_config_files=None,
                 **kwargs):
        common.parse(super().__call__, args,
                     default_config_files=default_config_files, **kwargs)
        _quiet_libraries(self)


def _quiet_libraries(conf):
    """Keep the libraries' log lines out of the table, unless --debug.

    Logging is not set up from the configuration: the log file is the
    service's, not the check's to write to.
    """
    root = std_logging.getLogger()
    # oslo.log, as its options are registered, gives the root logger a
    # handler on stderr of its own: every line would come twice, or
    # around the table.
    for handler in list(root.handlers):
        root.removeHandler(handler)
    try:
        debug = conf.debug
    except cfg.Error:
        debug = False
    if debug:
        handler = std_logging.StreamHandler(sys.stderr)
        handler.setFormatter(std_logging.Formatter(
            '%(levelname)s %(name)s: %(message)s'))
        root.addHandler(handler)
        root.setLevel(std_logging.DEBUG)
    else:
        root.addHandler(std_logging.NullHandler())


def main(argv=None):
    """The console script: oslo.upgradecheck's ``main`` on our options."""
    argv = sys.argv[1:] if argv is None else list(argv)
    conf = _ConfigOpts()
    common.register_opts(conf)
    checks = upgrade_checks.Checks(conf)
    try:
        return upgradecheck.main(conf, project=PROJECT,
                                 upgrade_command=checks, argv=argv)
    except (cfg.Error, exception.ConfigError) as e:
        # The checks could not run: oslo.upgradecheck's error status.
        sys.stderr.write('%s: configuration error: %s\n' % (
            os.path.basename(sys.argv[0]) or 'cache-maint-status',
            ' '.join(str(e).split())))
        return upgrade_checks.ERROR


if __name__ == '__main__':
    sys.exit(main())
