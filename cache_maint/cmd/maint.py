"""``cache-maint``: the service, under an oslo.service launcher."""

import socket
import sys

from oslo_config import cfg
from oslo_log import log as logging
from oslo_service import service as os_service

from cache_maint.cmd import common
from cache_maint import conf as cm_conf
from cache_maint import drivers
from cache_maint import exception
from cache_maint import service

LOG = logging.getLogger(__name__)


def _check_listener(conf):
    """Fail now if the API address cannot be bound."""
    host, port = conf.api.bind_host, conf.api.bind_port
    try:
        family = socket.getaddrinfo(host, port)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as e:
        raise exception.ConfigError(
            'cannot listen on [api] bind_host %s, bind_port %d: %s'
            % (host, port, e))


def _preflight(conf, running_listener=None):
    """Return why the service cannot run with ``conf``, or None.

    The listener is probed unless it is the one already in use, and before
    the driver's setup: a refused start creates nothing in the cache.
    """
    try:
        cm_conf.check(conf)
        if (conf.api.bind_host, conf.api.bind_port) != running_listener:
            _check_listener(conf)
        driver = drivers.load_driver(conf)
        driver.setup()
        driver.close()
    except exception.CacheMaintError as e:
        return str(e)
    return None


class ReloadCheckedConfig(cfg.ConfigOpts):
    """A configuration that refuses a reload cache-maint cannot run with.

    On SIGHUP the launcher re-reads the files in this (master) process and
    forks a new worker with the result. A bad file would give a worker that
    dies at start, again and again; so the files are first read into a
    scratch configuration and checked, and refused if they cannot work: the
    worker then restarts with the running configuration.
    """

    def reload_config_files(self):
        try:
            candidate = self._read_files_again()
        except cfg.Error as e:
            error = str(e)
        else:
            error = _preflight(candidate, running_listener=(
                self.api.bind_host, self.api.bind_port))
        if error is not None:
            LOG.error('Refusing the changed configuration files, keeping '
                      'the running configuration: %s', error)
            return False
        return super().reload_config_files()

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
    error = _preflight(conf)
    if error:
        LOG.error('cache-maint cannot start: %s', error)
        sys.exit('cache-maint: cannot start: %s' % error)
    conf.log_opt_values(LOG, logging.DEBUG)
    launcher = os_service.launch(conf, service.MaintenanceService(conf),
                                 workers=1, restart_method='reload')
    sys.exit(launcher.wait())


if __name__ == '__main__':
    main()
