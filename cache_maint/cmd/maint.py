"""``cache-maint``: the service, under an oslo.service launcher."""

import sys

from oslo_log import log as logging
from oslo_service import service as os_service

from cache_maint.cmd import common
from cache_maint import drivers
from cache_maint import exception
from cache_maint import service

LOG = logging.getLogger(__name__)


def main(argv=None):
    conf = common.load_config(sys.argv[1:] if argv is None else argv)
    # Check the cache and its metadata here, in the launcher, so that a
    # broken setup stops the service with a clear message instead of a
    # worker that fails and is forked again and again.
    try:
        driver = drivers.load_driver(conf)
        driver.setup()
        driver.close()
    except exception.CacheMaintError as e:
        LOG.error('cache-maint cannot start: %s', e)
        sys.exit('cache-maint: cannot start: %s' % e)
    conf.log_opt_values(LOG, logging.DEBUG)
    launcher = os_service.launch(conf, service.MaintenanceService(conf),
                                 workers=1, restart_method='reload')
    sys.exit(launcher.wait())


if __name__ == '__main__':
    main()
