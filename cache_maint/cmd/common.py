"""What every command does first: parse and check the configuration."""

import argparse
import contextlib
import io
import os
import re
import stat
import sys

from oslo_config import cfg
from oslo_log import log as logging
from oslo_service import opts as service_opts

from cache_maint.api import auth
from cache_maint import conf as cm_conf
from cache_maint.conf import sources
from cache_maint import exception
from cache_maint import version

LOG = logging.getLogger(__name__)

#: The exit status of a configuration that cannot work: retrying will not
#: mend it (sysexits.h's EX_CONFIG; see RestartPreventExitStatus= in the
#: systemd unit).
EX_CONFIG = 78

# argparse's words for a bad value of an option oslo.config also takes on
# the command line (``debug = maybe`` in a file).
_ARGPARSE_VALUE = re.compile(r'argument --([\w-]+): (.*)')


def register_opts(conf, cli_opts=()):
    """Every option a command may read, its libraries' included."""
    cm_conf.register_opts(conf)
    auth.register_opts(conf)
    service_opts.register_service_opts(conf)
    conf.register_cli_opts(cli_opts)


def parse(conf, argv, **kwargs):
    """``conf(argv)``, raising ConfigError instead of argparse's exit.

    oslo.config hands the options it also takes on the command line to
    argparse, which exits on a bad value: in the launcher, on a reload, that
    exit once wedged the service. Help still exits, as it should.
    """
    _refuse_special_files(argv)
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            conf(argv, project='cache-maint',
                 version=version.version_string(), **kwargs)
    except SystemExit as e:
        if not e.code:
            raise
        # What argparse printed is said again, in one line, by the caller.
        raise _argparse_error(errors.getvalue(), argv)
    except OSError as e:
        # oslo.config lets through what it cannot open: a directory where
        # it looks for a default configuration file, say.
        raise exception.ConfigError('cannot read %s: %s'
                                    % (e.filename, e.strerror or e))
    sys.stderr.write(errors.getvalue())


def _refuse_special_files(argv):
    """Refuse a configuration file that is no regular file.

    oslo.config reads a FIFO until a writer comes (for ever) and a device
    until memory runs out (/dev/zero). A path that does not exist is left
    to oslo.config, which says so.
    """
    for path in _files_in(argv):
        try:
            mode = os.stat(path).st_mode
        except OSError:
            continue
        if not stat.S_ISREG(mode):
            raise exception.ConfigError(
                'configuration file %s is not a regular file' % path)


def _argparse_error(text, argv):
    """A ConfigError from what argparse printed before it exited."""
    message = text.strip().splitlines()[-1] if text.strip() else 'bad usage'
    message = message.partition(': error: ')[2] or message
    match = _ARGPARSE_VALUE.fullmatch(message)
    if match is not None:
        name = sources.normalized(match.group(1))
        found = sources.find_in(_files_in(argv), 'DEFAULT', name)
        if found is not None:
            return exception.ConfigError(
                'invalid value %r for [DEFAULT] %s in %s: %s'
                % (found[1], name, found[0], match.group(2)))
        return exception.ConfigError('invalid value for --%s: %s'
                                     % (match.group(1), match.group(2)))
    return exception.ConfigError(message)


def _files_in(argv):
    """The files ``--config-file`` and ``--config-dir`` name in ``argv``."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('--config-file', action='append', default=[])
    parser.add_argument('--config-dir', action='append', default=[])
    known, _rest = parser.parse_known_args(argv)
    files = [os.path.abspath(path) for path in known.config_file]
    for directory in known.config_dir:
        files += sources.paths_in(directory)
    return files


def load_config(argv, cli_opts=(), conf_class=cfg.ConfigOpts,
                log_to_stderr=False, setup_logging=True, needs_cache=True):
    """A fresh, checked configuration with logging set up; exit on error.

    A configuration that cannot work exits with EX_CONFIG and one line.
    ``needs_cache`` is False, or a function of the parsed configuration
    that says so, where ``image_cache_dir`` may be unset.
    Options set in a file but known to nothing are logged as warnings;
    without ``setup_logging``, printed on stderr after ``warning:``.
    """
    conf = conf_class()
    register_opts(conf, cli_opts)
    if log_to_stderr:
        # Keep stdout for the command's own output.
        conf.set_default('use_stderr', True)
    try:
        parse(conf, argv)
        auth.register_opts(conf)    # the auth plugin's, now that it is known
        cm_conf.check(conf, needs_cache(conf) if callable(needs_cache)
                      else needs_cache)
    except (cfg.Error, exception.ConfigError) as e:
        _exit('configuration error: %s' % e)
    if not setup_logging:
        for message in cm_conf.unknown_options(conf):
            sys.stderr.write('warning: %s\n' % message)
        return conf
    try:
        logging.setup(conf, 'cache-maint')
    except Exception as e:
        _exit('configuration error: cannot set up logging (%s): %s'
              % (_logging_options(conf), ' '.join(str(e).split())))
    for message in cm_conf.unknown_options(conf):
        LOG.warning(message)
    return conf


def _exit(message, status=EX_CONFIG):
    """Exit with ``status`` and one line on stderr, naming the command."""
    sys.stderr.write('%s: %s\n' % (
        os.path.basename(sys.argv[0]) or 'cache-maint', message))
    sys.exit(status)


def _logging_options(conf):
    if conf.log_config_append:
        return '[DEFAULT] log_config_append = %s' % conf.log_config_append
    if conf.log_file:
        return '[DEFAULT] log_file = %s, log_dir = %s' % (
            conf.log_file, conf.log_dir)
    return 'the [DEFAULT] logging options'
