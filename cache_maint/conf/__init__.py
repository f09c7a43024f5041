"""cache-maint's configuration: registering every option, and checking a
parsed configuration before anything acts on it.
"""

import ipaddress
import os
import socket

from oslo_concurrency import lockutils
from oslo_log import log as logging
from oslo_middleware import cors
from oslo_middleware.healthcheck import opts as healthcheck_opts
from oslo_middleware import http_proxy_to_wsgi
from oslo_middleware import sizelimit
from oslo_policy import opts as policy_opts

from cache_maint.conf import api
from cache_maint.conf import cache
from cache_maint.conf import database
from cache_maint.conf import maintenance
from cache_maint.conf import metrics
from cache_maint.conf import prune
from cache_maint.conf import unknown
from cache_maint.conf import values
from cache_maint import exception

#: The modules that define cache-maint's own options.
MODULES = (cache, maintenance, prune, api, metrics, database)

#: The groups no other program's configuration has.
OWN_GROUPS = frozenset(
    getattr(group, 'name', group) for module in MODULES
    for group in module.list_opts()) - {'DEFAULT', 'database'}


def register_opts(conf):
    """Register cache-maint's options and those of the libraries it uses."""
    for module in MODULES:
        module.register_opts(conf)
    logging.register_options(conf)
    policy_opts.set_defaults(conf)
    lockutils.get_lock_path(conf)     # registers [oslo_concurrency]
    conf.register_opts(sizelimit.OPTS, group='oslo_middleware')
    conf.register_opts(http_proxy_to_wsgi.OPTS, group='oslo_middleware')
    conf.register_opts(cors.CORS_OPTS, group='cors')
    conf.register_opts(healthcheck_opts.HEALTHCHECK_OPTS, group='healthcheck')


#: The lowest [prune] max_delete_rate, but 0: 1 MiB a second. Below it, a
#: paced prune takes days and holds the prune lock all that time.
MIN_DELETE_RATE = 1024 * 1024


def check(conf, needs_cache=True):
    """Raise ConfigError naming the option if the configuration is unusable.

    oslo.config only checks a value when it is read, so every registered
    option is read here once, at start-up, rather than in the middle of a
    run or of a request. Without ``needs_cache`` (a command that reads no
    cache and serves nothing), only the values and the ``[prune]`` options
    are checked: the cache directory may be unset.
    """
    values.check(conf)
    _check_log_file(conf)
    if not needs_cache:
        _check_prune(conf)
        return
    if not conf.image_cache_dir:
        raise exception.ConfigError(
            '[DEFAULT] image_cache_dir is not set; set it to the image cache '
            'directory of glance-api')
    _check_prune(conf)
    _check_state_dir(conf)
    _check_lock_path(conf)
    if (conf.api.auth_strategy == 'noauth2'
            and not conf.api.allow_insecure_noauth
            and not _is_loopback(conf.api.bind_host)):
        raise exception.ConfigError(
            '[api] auth_strategy = noauth2 makes anyone an admin, so it only '
            'listens on loopback; [api] bind_host = %s is not loopback (set '
            '[api] allow_insecure_noauth = true to force it)'
            % conf.api.bind_host)


def _check_prune(conf):
    if conf.prune.low_watermark > conf.prune.high_watermark:
        raise exception.ConfigError(
            '[prune] low_watermark = %d exceeds [prune] high_watermark = %d: '
            'prune evicts down to the low one once over the high one'
            % (conf.prune.low_watermark, conf.prune.high_watermark))
    rate = conf.prune.max_delete_rate
    if 0 < rate < MIN_DELETE_RATE:
        raise exception.ConfigError(
            '[prune] max_delete_rate = %d bytes a second would take a day '
            'to free 80G while holding the prune lock; set 0 (no pacing) or '
            'at least 1M (is a suffix missing, as in 100M?)' % rate)


def _check_log_file(conf):
    """Refuse a log file that cannot be written, before anything starts.

    oslo.log opens it only when logging is set up, after the checks of
    ``--check-config`` and of a reload: a check would pass, and the start
    after it fail.
    """
    path = directory = None
    if conf.log_file:
        path = (os.path.join(conf.log_dir, conf.log_file) if conf.log_dir
                else conf.log_file)
        directory = os.path.dirname(os.path.abspath(path))
    elif conf.log_dir:
        directory = conf.log_dir
    else:
        return
    options = '[DEFAULT] log_file = %s, log_dir = %s' % (
        conf.log_file, conf.log_dir)
    if path is not None and os.path.exists(path):
        if os.path.isdir(path) or not os.access(path, os.W_OK):
            raise exception.ConfigError(
                '%s: %s is not a file this user (uid %d) can write'
                % (options, path, os.getuid()))
    elif not (os.path.isdir(directory)
              and os.access(directory, os.W_OK | os.X_OK)):
        raise exception.ConfigError(
            '%s: %s is not a directory this user (uid %d) can write the log '
            'in' % (options, directory, os.getuid()))


def _check_lock_path(conf):
    """Refuse ``[oslo_concurrency] lock_path`` set to nothing.

    Unset, the locks live in the cache directory, as glance-api's do. Set
    empty, it replaces that default with no directory at all: glance-api's
    cache locks fail, and so would every lock of cache-maint's.
    """
    location = conf.get_location('lock_path', 'oslo_concurrency')
    if (conf.oslo_concurrency.lock_path == '' and location is not None
            and location.location.is_user_controlled):
        raise exception.ConfigError(
            '[oslo_concurrency] lock_path is set but empty: glance-api and '
            'cache-maint could take no lock; remove the line, or set it to '
            "glance-api's lock directory")


#: The places of the cache directory whose files Glance counts, lists,
#: cleans or clears: cache-maint's state must be in none of them.
_GLANCE_PLACES = ('', 'incomplete', 'invalid', 'queue')


def _check_state_dir(conf):
    """Refuse a state directory whose files Glance would take for its own.

    In the cache directory itself glance-api would count state.db as
    cache; in incomplete/ or invalid/ clean would delete it; in queue/,
    clearing the queue would.
    """
    state_dir = os.path.realpath(maintenance.state_dir(conf))
    for place in _GLANCE_PLACES:
        glances = os.path.realpath(os.path.join(conf.image_cache_dir, place))
        if state_dir == glances or state_dir.startswith(
                glances + os.sep) and place:
            raise exception.ConfigError(
                '[maintenance] state_dir = %s is %s, whose files glance-api '
                'counts or removes; use a directory of its own (the default '
                'is .cache-maint inside image_cache_dir)' % (
                    conf.maintenance.state_dir,
                    'image_cache_dir' if not place else 'in ' + place + '/'))


def unknown_options(conf):
    """A message for each option set in a file that nothing reads."""
    return unknown.report(conf, OWN_GROUPS)


def _is_loopback(host):
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return all(ipaddress.ip_address(info[4][0]).is_loopback
               for info in infos)
