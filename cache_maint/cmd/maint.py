"""``cache-maint``: the service, under an oslo.service launcher."""

import sys

from oslo_config import cfg
from oslo_log import log as logging
from oslo_service import service as os_service

from cache_maint.api import server
from cache_maint.cmd import common
from cache_maint import conf as cm_conf
from cache_maint import drivers
from cache_maint import exception
from cache_maint import service

LOG = logging.getLogger(__name__)


def _preflight(conf, listener=None):
    """(error or None, a new Listener or None) for running with ``conf``.

    A new listener is bound unless ``listener`` already serves the address,
    and before the driver's setup: a refused start creates nothing in the
    cache.
    """
    new = None
    try:
        cm_conf.check(conf)
        if listener is None or not listener.serves(conf):
            new = server.Listener.for_conf(conf)
        driver = drivers.load_driver(conf)
        driver.setup()
        driver.close()
    except exception.CacheMaintError as e:
        if new is not None:
            new.close()
        return str(e), None
    return None, new


class ReloadCheckedConfig(cfg.ConfigOpts):
    """A configuration that refuses a reload cache-maint cannot run with.

    On SIGHUP the launcher re-reads the files in this (master) process and
    forks a new worker with the result. A bad file would give a worker that
    dies at start, again and again; so the files are first read into a
    scratch configuration and checked, and refused if they cannot work: the
    worker then restarts with the running configuration.
    """

    #: The API's socket, which a reload moves if the address changed.
    listener = None

    def reload_config_files(self):
        try:
            candidate = self._read_files_again()
        except cfg.Error as e:
            error, new_listener = str(e), None
        else:
            error, new_listener = _preflight(candidate, self.listener)
        if error is not None:
            LOG.error('Refusing the changed configuration files, keeping '
                      'the running configuration: %s', error)
            return False
        reloaded = super().reload_config_files()
        if new_listener is not None:
            if reloaded:
                self.listener.replace(new_listener)
            else:
                new_listener.close()
        return reloaded

    def _read_files_again(self):
        args = []
        for path in self.config_file or ():
            args += ['--config-file', path]
        for path in self.config_dir or ():
            args += ['--config-dir', path]
        candidate = cfg.ConfigOpts()
        cm_conf.register_opts(candidate)
        candidate(args, project='cache-maint', default_config_files=[],
                  default_config_dirs=[])
        return candidate


def main(argv=None):
    conf = common.load_config(sys.argv[1:] if argv is None else argv,
                              conf_class=ReloadCheckedConfig)
    # Check here, in the launcher, so that a broken setup stops the service
    # with a clear message instead of a worker that fails and is forked
    # again and again.
    error, conf.listener = _preflight(conf)
    if error:
        LOG.error('cache-maint cannot start: %s', error)
        sys.exit('cache-maint: cannot start: %s' % error)
    conf.log_opt_values(LOG, logging.DEBUG)
    launcher = os_service.launch(
        conf, service.MaintenanceService(conf, conf.listener), workers=1,
        restart_method='reload')
    sys.exit(launcher.wait())


if __name__ == '__main__':
    main()
