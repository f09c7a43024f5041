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

A reload's checks run in a process of their own, ``cache-maint
--check-config``, killed if it takes too long: the launcher stays free to
answer signals, and it does nothing but read files and bind a socket while
cotyledon may fork a worker from another of its threads.
"""

import os
import subprocess
import sys
import threading

from oslo_log import log as logging

from cache_maint.api import auth
from cache_maint.api import deploy
from cache_maint.api import health
from cache_maint.api import identity
from cache_maint.api import server
from cache_maint import cache
from cache_maint import conf as cm_conf
from cache_maint import exception
from cache_maint import locks
from cache_maint import policy

LOG = logging.getLogger(__name__)

#: Seconds a reload's checks may take. The database drivers give up on a
#: server that never answers sooner than this; this bounds the rest.
RELOAD_CHECK_TIMEOUT = 45

#: The exit status of ``--check-config`` when the configuration itself
#: cannot work (sysexits.h's EX_CONFIG); 1 when this node cannot run it.
EX_CONFIG = 78


def check_configuration(conf):
    """Raise ConfigError if the configuration itself cannot work."""
    cm_conf.check(conf)
    auth.check(conf)
    policy.check(conf)
    health.check(conf)
    # Building the application reads the middleware options and registers
    # those of the libraries that register theirs as they start.
    deploy.loadapp(conf, cache=None, runner=None, flights=None)
    cm_conf.check(conf)


def check_node(conf):
    """Raise unless the cache directory and its metadata store are usable.

    Creates nothing: a refused start leaves the disk and the database as
    they were.
    """
    node_cache = cache.Cache.from_conf(conf)
    try:
        node_cache.check()
        node_cache.state.check_usable()
    finally:
        node_cache.close()


def keystone_problem(conf):
    """One line if Keystone cannot validate tokens now, else None.

    Not a refusal: clean and prune run on their timers without Keystone,
    and Keystone may be started after cache-maint. Until it is mended,
    every authenticated request is answered 503.
    """
    return identity.probe(conf)


def prepare(conf):
    """Create what Glance would create in the cache if it is missing.

    And cache-maint's state: a state directory that cannot be made or a
    state database that cannot be written stops the start here, rather
    than fail every prune (which refuses to run without the pins).
    """
    node_cache = cache.Cache.from_conf(conf)
    try:
        node_cache.setup()
        node_cache.state.check()
    finally:
        node_cache.close()


class Claims:
    """What a running service holds: its sockets and its cache's lock.

    The metrics listener is always a ``server.Listener``, unbound while the
    metrics are off: the service keeps a reference to it, and a reload
    that turns them on or moves them binds it in place.
    """

    def __init__(self, listener=None, service_lock=None,
                 metrics_listener=None, metrics_enabled=True):
        self.listener = listener
        self.service_lock = service_lock
        self.metrics_listener = metrics_listener
        #: Whether the configuration these claims are for wants metrics.
        self.metrics_enabled = metrics_enabled

    def release(self):
        if self.listener is not None:
            self.listener.close()
        if self.service_lock is not None:
            self.service_lock.release()
        if self.metrics_listener is not None:
            self.metrics_listener.close()

    def take_over(self, new):
        """Hold what ``new`` claimed in place of what it replaces."""
        if new.listener is not None:
            self.listener.replace(new.listener)
        if new.service_lock is not None:
            self.service_lock.replace(new.service_lock)
        if new.metrics_listener is not None:
            self.metrics_listener.replace(new.metrics_listener)
        elif not new.metrics_enabled:
            self.metrics_listener.close()
        self.metrics_enabled = new.metrics_enabled


def claim(conf, held=None):
    """Claims of what ``conf`` needs and ``held`` lacks; raise if it can't.

    The API address is bound, the cache's service lock taken and the
    metrics address bound (if ``[metrics] enabled``), each unless ``held``
    has it already. At start (no ``held``), the metrics listener is made
    unbound when the metrics are off.
    """
    new = Claims(metrics_enabled=conf.metrics.enabled)
    try:
        if held is None or not held.listener.serves(conf):
            new.listener = server.Listener.for_conf(conf)
        if held is None or not held.service_lock.covers(conf):
            new.service_lock = locks.ServiceLock(conf)
        # After the lock: a second service on the same cache is refused
        # for that, whatever its metrics address.
        if conf.metrics.enabled and (
                held is None or not held.metrics_listener.serves(conf)):
            new.metrics_listener = server.Listener.for_conf(conf, 'metrics')
        elif held is None:
            new.metrics_listener = server.Listener.unbound('metrics')
    except BaseException:
        new.release()
        raise
    return new


def check_in_a_process(config_args):
    """Run ``cache-maint --check-config`` on these files; raise if refused.

    Returns the warnings it printed. Its verdict is the last line of its
    standard error, as a start would have printed it.
    """
    check = subprocess.Popen(
        [sys.executable, '-m', 'cache_maint.cmd.maint', '--check-config']
        + list(config_args), stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ))
    try:
        _, errors = check.communicate(timeout=RELOAD_CHECK_TIMEOUT)
    except subprocess.TimeoutExpired:
        check.kill()
        # A process stuck in the kernel (a hung NFS mount) outlives even
        # SIGKILL: it is left to a thread to reap, never waited for here.
        threading.Thread(target=check.wait, daemon=True).start()
        raise exception.ConfigError(
            'checking it took longer than %d s (is the database of '
            '[database] connection answering?)' % RELOAD_CHECK_TIMEOUT)
    lines = [line for line in errors.splitlines() if line.strip()]
    if check.returncode != 0:
        verdict = lines[-1] if lines else 'status %d' % check.returncode
        raise exception.ConfigError(verdict.split(': ', 1)[-1])
    return [line[len('warning: '):] for line in lines
            if line.startswith('warning: ')]
