"""``cache-maint``: the service, under an oslo.service launcher."""

import socket
import sys

from oslo_log import log as logging
from oslo_service import service as os_service

from cache_maint.cmd import common
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


def _preflight(conf):
    """Return why the service cannot start, or None."""
    try:
        driver = drivers.load_driver(conf)
        driver.setup()
        driver.close()
        _check_listener(conf)
    except exception.CacheMaintError as e:
        return str(e)
    return None


def main(argv=None):
    conf = common.load_config(sys.argv[1:] if argv is None else argv)
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
