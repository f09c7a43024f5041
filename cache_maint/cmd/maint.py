"""``cache-maint``: the service, under an oslo.service launcher."""

import sys

from oslo_config import cfg
from oslo_log import log as logging
from oslo_service import service as os_service

from cache_maint.cmd import common
from cache_maint.cmd import preflight
from cache_maint import conf as cm_conf
from cache_maint.conf import sources
from cache_maint import exception
from cache_maint import service

LOG = logging.getLogger(__name__)


#: ``--check-config``: check as a start or a reload would, start nothing.
CHECK_CONFIG = cfg.BoolOpt(
    'check-config',
    default=False,
    help='Check the configuration files and this node as a start or a '
         'reload does (option values, the policy file, the auth settings, '
         'the cache directory and its metadata store), say what is wrong, '
         'and exit: 0 if the service could run with them, 78 if the '
         'configuration cannot work, 1 if this node cannot run it now. '
         'Starts nothing and creates nothing; the API address is not '
         'tried, as a running service holds it.')


class ReloadCheckedConfig(cfg.ConfigOpts):
    """A configuration that refuses a reload cache-maint cannot run with.

    On SIGHUP the launcher re-reads the files in this (master) process and
    forks a new worker with the result. A bad file would give a worker that
    dies at start, again and again; so the files are first checked, by
    ``cache-maint --check-config`` in a process of its own and within a
    bounded time, and refused if they cannot work: the worker then restarts
    with the running configuration. Whatever happens, the launcher goes on
    answering signals.
    """

    #: The preflight.Claims of the running service (API and metrics
    #: sockets, lock).
    claims = None

    def reload_config_files(self):
        checked = sources.contents(self)
        new, error = _attempt(self._check_files_again)
        if error is None and sources.contents(self) != checked:
            new.release()
            error = 'they changed while they were checked; reload again'
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
                      'changed while they were reloaded; reload again')
            return False
        self.claims.take_over(new)
        if sources.contents(self) != checked:
            LOG.error('The configuration files changed while they were '
                      'reloaded: what applies now was not checked; reload '
                      'again')
        LOG.info('Reloaded the configuration files')
        return True

    def _check_files_again(self):
        """Claims for the files as they are now; raise if they can't work."""
        arguments = self._config_arguments()
        for warning in preflight.check_in_a_process(arguments):
            LOG.warning(warning)
        # Only what claim() reads: cotyledon may fork a worker from another
        # thread meanwhile, and the less this one does (no plugin imports),
        # the less the child can inherit half done. Parsed as it is, with
        # no stderr swapped for argparse's message: the check just parsed
        # the same files, and a worker forked meanwhile would keep whatever
        # sys.stderr is at that moment.
        candidate = cfg.ConfigOpts()
        cm_conf.register_opts(candidate)
        try:
            candidate(arguments, project='cache-maint',
                      default_config_files=[], default_config_dirs=[])
        except SystemExit:
            raise exception.ConfigError('the files changed while they were '
                                        'checked; reload again')
        return preflight.claim(candidate, self.claims)

    def _config_arguments(self):
        args = []
        for path in self.config_file or ():
            args += ['--config-file', path]
        for path in self.config_dir or ():
            args += ['--config-dir', path]
        return args


#: Logged at start, and by a reload's check, when Keystone cannot be asked.
KEYSTONE_WARNING = ('Keystone cannot validate tokens now, so every '
                    'authenticated request will be answered 503 until it '
                    'can: %s')


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    checking = '--check-config' in argv
    conf = common.load_config(argv, cli_opts=[CHECK_CONFIG],
                              conf_class=ReloadCheckedConfig,
                              setup_logging=not checking)
    if conf.check_config:
        _check_only(conf)
    # Checked here, in the launcher, so that a broken setup stops the
    # service with a clear message instead of a worker that fails and is
    # forked again and again.
    _, error = _attempt(preflight.check_configuration, conf)
    if error is not None:
        _refuse(error, common.EX_CONFIG)
    _, error = _attempt(preflight.check_node, conf)
    if error is None:
        conf.claims, error = _attempt(preflight.claim, conf)
    if error is None:
        _, error = _attempt(preflight.prepare, conf)
    if error is not None:
        _refuse(error, 1)
    problem = preflight.keystone_problem(conf)
    if problem is not None:
        LOG.warning(KEYSTONE_WARNING, problem)
    conf.log_opt_values(LOG, logging.DEBUG)
    launcher = os_service.launch(
        conf, service.MaintenanceService(conf, conf.claims.listener,
                                         conf.claims.metrics_listener),
        workers=1, restart_method='reload')
    sys.exit(launcher.wait())


def _check_only(conf):
    """``--check-config``: one line on stderr and the exit status."""
    for check, status in ((preflight.check_configuration, common.EX_CONFIG),
                          (preflight.check_node, 1)):
        _, error = _attempt(check, conf)
        if error is not None:
            sys.stderr.write('cache-maint: %s\n' % error)
            sys.exit(status)
    problem = preflight.keystone_problem(conf)
    if problem is not None:
        sys.stderr.write('warning: %s\n' % (KEYSTONE_WARNING % problem))
    print('cache-maint: the configuration files can be used')
    sys.exit(0)


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
