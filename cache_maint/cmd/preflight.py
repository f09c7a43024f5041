"""What the service checks before it acts on a configuration.

At start, in the launcher, so that a setup that cannot work stops there with
one clear line instead of a worker that dies and is forked again and again;
and on every reload, so that a change that cannot work is refused while the
running configuration goes on serving.

Two kinds of checks, told apart by the exit status at start: the
configuration itself (option values, the auth settings, the policy file,
the middleware the application is built from) cannot work, and retrying
will not help (EX_CONFIG); or this node cannot run it right now (the cache
directory, the metadata store, the API address, another cache-maint on the
same cache), which a later start may find mended (status 1).
"""

import threading

from oslo_log import log as logging

from cache_maint.api import auth
from cache_maint.api import deploy
from cache_maint.api import health
from cache_maint.api import server
from cache_maint import conf as cm_conf
from cache_maint import drivers
from cache_maint import exception
from cache_maint import locks
from cache_maint import policy

LOG = logging.getLogger(__name__)

#: Seconds a reload's checks may take. The database drivers give up on a
#: server that never answers sooner than this; this bounds the rest.
RELOAD_CHECK_TIMEOUT = 45


def check_configuration(conf):
    """Raise ConfigError if the configuration itself cannot work."""
    cm_conf.check(conf)
    auth.check(conf)
    policy.check(conf)
    health.check(conf)
    # Building the application reads the middleware options and registers
    # those of the libraries that register theirs as they start.
    deploy.loadapp(conf, runner=None)
    cm_conf.check(conf)


class Claims:
    """What a running service holds: its API socket and its cache's lock."""

    def __init__(self, listener=None, service_lock=None):
        self.listener = listener
        self.service_lock = service_lock

    def release(self):
        if self.listener is not None:
            self.listener.close()
        if self.service_lock is not None:
            self.service_lock.release()

    def take_over(self, new):
        """Hold what ``new`` claimed in place of what it replaces."""
        if new.listener is not None:
            self.listener.replace(new.listener)
        if new.service_lock is not None:
            self.service_lock.replace(new.service_lock)


def check_environment(conf, held=None):
    """Claims of what ``conf`` needs and ``held`` lacks; raise if it can't.

    The API address is bound, the cache directory and its metadata store
    checked, and the cache's service lock taken, each unless ``held``
    covers it already. A refused start creates nothing in the cache.
    """
    new = Claims()
    try:
        if held is None or not held.listener.serves(conf):
            new.listener = server.Listener.for_conf(conf)
        driver = drivers.load_driver(conf)
        try:
            driver.cachedir.check_usable()
            driver.check_metadata()
            if held is None or not held.service_lock.covers(conf):
                new.service_lock = locks.ServiceLock(conf)
            driver.setup()
        finally:
            driver.close()
    except BaseException:
        new.release()
        raise
    return new


def check_reload(candidate, held):
    """Claims for ``candidate``, within RELOAD_CHECK_TIMEOUT; raise if not.

    The checks run in a thread of their own: a check that hangs leaves the
    launcher free to refuse the reload and to answer signals. What such a
    check claims once it is given up on is released at once.
    """
    outcome = {}
    guard = threading.Lock()
    done = threading.Event()

    def run():
        try:
            check_configuration(candidate)
            claims = check_environment(candidate, held)
        except Exception as e:
            claims, error = None, e
        else:
            error = None
        with guard:
            if 'timeout' in outcome:
                if claims is not None:
                    claims.release()
            else:
                outcome.update(claims=claims, error=error)
        done.set()

    threading.Thread(target=run, name='reload-check', daemon=True).start()
    done.wait(RELOAD_CHECK_TIMEOUT)
    with guard:
        if 'claims' not in outcome:
            outcome['timeout'] = True
            raise exception.ConfigError(
                'checking it took longer than %d s (is the database of '
                '[database] connection answering?)' % RELOAD_CHECK_TIMEOUT)
    if outcome['error'] is not None:
        raise outcome['error']
    return outcome['claims']
