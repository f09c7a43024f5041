"""``cache-maint``: the service, under an oslo.service launcher."""

import sys

from oslo_config import cfg
from oslo_log import log as logging
from oslo_service import service as os_service

from cache_maint.cmd import common
from cache_maint.cmd import preflight
from cache_maint import conf as cm_conf
from cache_maint import exception
from cache_maint import service

LOG = logging.getLogger(__name__)


class ReloadCheckedConfig(cfg.ConfigOpts):
    """A configuration that refuses a reload cache-maint cannot run with.

    On SIGHUP the launcher re-reads the files in this (master) process and
    forks a new worker with the result. A bad file would give a worker that
    dies at start, again and again; so the files are first read into a
    scratch configuration and checked, within a bounded time, and refused
    if they cannot work: the worker then restarts with the running
    configuration. Whatever happens, the launcher goes on answering
    signals.
    """

    #: The preflight.Claims of the running service (API socket, lock).
    claims = None

    def reload_config_files(self):
        new, error = _attempt(self._check_files_again)
        if error is not None:
            LOG.error('Refusing the changed configuration files, keeping '
                      'the running configuration: %s', error)
            return False
        # The files just passed the same parse; an exit here must still not
        # leave the launcher (see common.parse).
        try:
            reloaded = super().reload_config_files()
        except (Exception, SystemExit):
            reloaded = False
        if not reloaded:
            new.release()
            LOG.error('Refusing the changed configuration files: they '
                      'changed again while they were checked')
            return False
        self.claims.take_over(new)
        for message in cm_conf.unknown_options(self):
            LOG.warning(message)
        LOG.info('Reloaded the configuration files')
        return True

    def _check_files_again(self):
        """Claims for the files as they are now; raise if they can't work."""
        return preflight.check_reload(self._read_files_again(), self.claims)

    def _read_files_again(self):
        args = []
        for path in self.config_file or ():
            args += ['--config-file', path]
        for path in self.config_dir or ():
            args += ['--config-dir', path]
        candidate = cfg.ConfigOpts()
        common.register_opts(candidate)
        common.parse(candidate, args, default_config_files=[],
                     default_config_dirs=[])
        return candidate


def main(argv=None):
    conf = common.load_config(sys.argv[1:] if argv is None else argv,
                              conf_class=ReloadCheckedConfig)
    # Checked here, in the launcher, so that a broken setup stops the
    # service with a clear message instead of a worker that fails and is
    # forked again and again.
    _, error = _attempt(preflight.check_configuration, conf)
    if error is not None:
        _refuse(error, common.EX_CONFIG)
    conf.claims, error = _attempt(preflight.check_environment, conf)
    if error is not None:
        _refuse(error, 1)
    conf.log_opt_values(LOG, logging.DEBUG)
    launcher = os_service.launch(
        conf, service.MaintenanceService(conf, conf.claims.listener),
        workers=1, restart_method='reload')
    sys.exit(launcher.wait())


def _attempt(check, *args):
    """(what ``check(*args)`` returned, None) or (None, its error).

    The error is returned to be logged outside the except block: oslo.log
    would append it to the line again.
    """
    try:
        return check(*args), None
    except (cfg.Error, exception.CacheMaintError) as e:
        return None, e
    except Exception as e:
        LOG.debug('Unexpected error in a preflight check', exc_info=True)
        return None, '%s: %s' % (type(e).__name__, e)


def _refuse(error, status):
    # Outside the except block: oslo.log would append the exception.
    LOG.error('cache-maint cannot start: %s', error)
    sys.stderr.write('cache-maint: cannot start: %s\n' % error)
    sys.exit(status)


if __name__ == '__main__':
    main()
