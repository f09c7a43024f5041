"""Every registered option read once, at start and on reload.

oslo.config checks a value only when it is read, and a library reads its
options whenever it pleases: a bad ``[oslo_middleware]
max_request_body_size`` turned every answer into a 500, a bad ``[DEFAULT]
graceful_shutdown_timeout`` a traceback. Reading every option once, before
anything acts on the configuration, turns each of those into one line.
"""

from oslo_config import cfg

from cache_maint.conf import sources
from cache_maint import exception


def registered(conf):
    """(group name, option) of every option registered in ``conf``.

    oslo.config has no public listing of its Opt objects; its own
    ``log_opt_values`` walks the same attributes.
    """
    for info in conf._opts.values():
        yield 'DEFAULT', info['opt']
    for group_name, group in conf._groups.items():
        for info in group._opts.values():
            yield group_name, info['opt']


def check(conf):
    """Raise ConfigError for the first option whose value is invalid."""
    for group, opt in registered(conf):
        section = conf if group == 'DEFAULT' else conf[group]
        try:
            getattr(section, opt.dest)
        except (cfg.ConfigFileValueError, ValueError) as e:
            raise invalid(conf, group, opt, e)


def invalid(conf, group, opt, error):
    """A ConfigError saying, in one line, what is wrong with an option.

    The value of a secret option is never shown, nor the reason, which may
    quote it.
    """
    reason = str(error).rpartition(' is not valid: ')[2]
    found = sources.find(conf, group, opt.dest)
    value, where = '', ''
    if found is not None:
        value = ' %r' % (found[1],)
        where = ' in %s' % found[0]
    if opt.secret:
        value, reason = '', 'the value is secret and not shown'
    return exception.ConfigError('invalid value%s for [%s] %s%s: %s'
                                 % (value, group, opt.dest, where, reason))
