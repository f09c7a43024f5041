"""``/healthcheck`` that tells the truth about this node.

oslo.middleware's healthcheck answers 200 "OK" unless one of its backends
says otherwise, and by default it has none: it said 200 while every run
failed. cache-maint adds three backends of its own, written against
oslo.middleware's backend interface: the cache directory is usable, the
metadata store answers, and the last run of each task did not fail. The
operator's ``[healthcheck] backends`` (``disable_by_file``...) still apply.

The answer says which check failed to anyone; what failed and why (paths,
errors, thread stacks) only to loopback clients and to admins.
"""

from importlib import metadata
import ipaddress

from oslo_middleware import healthcheck
from oslo_middleware.healthcheck import pluginbase
import stevedore

from cache_maint.api import util
from cache_maint import exception
from cache_maint.policies import base as base_policies

#: oslo.middleware's namespace of healthcheck backends.
NAMESPACE = healthcheck.Healthcheck.NAMESPACE


class _Check(pluginbase.HealthcheckBaseExtension):
    """A backend that looks at the running service."""

    name = None

    def __init__(self, conf, cache, runner):
        super().__init__(conf, {})
        self.cache = cache
        self.runner = runner

    def healthcheck(self, server_port):
        try:
            problem = self.problem()
        except exception.CacheMaintError as e:
            problem = str(e)
        if problem is None:
            return pluginbase.HealthcheckResult(True, 'OK')
        return pluginbase.HealthcheckResult(False, self.failure,
                                            details=problem)

    def problem(self):
        """What is wrong, or None; CacheMaintError says so too."""
        raise NotImplementedError


class CacheDirCheck(_Check):
    name = 'cache_dir'
    failure = 'image cache directory not usable'

    def problem(self):
        self.cache.files.check_usable()


class MetadataCheck(_Check):
    name = 'metadata'
    failure = 'image cache metadata store not reachable'

    def problem(self):
        self.cache.metadata.ping()


class RunsCheck(_Check):
    name = 'runs'
    failure = 'last maintenance run failed'

    def problem(self):
        failed = [record for record in self.runner.last_runs().values()
                  if record['outcome'] == 'failed']
        if not failed:
            return None
        return '; '.join('the last %s run (%s) failed: %s'
                         % (r['task'], r['trigger'], r['error'])
                         for r in failed)


CHECKS = (CacheDirCheck, MetadataCheck, RunsCheck)


def check(conf):
    """Raise ConfigError for a ``[healthcheck] backends`` name unknown."""
    known = {ep.name for ep in metadata.entry_points(group=NAMESPACE)}
    unknown = [name for name in conf.healthcheck.backends
               if name not in known]
    if unknown:
        raise exception.ConfigError(
            '[healthcheck] backends names %s, which oslo.middleware does not '
            'have (it has: %s)' % (', '.join(unknown),
                                   ', '.join(sorted(known)) or 'none'))


class _Healthcheck(healthcheck.Healthcheck):
    """oslo.middleware's healthcheck, with cache-maint's backends too."""

    def __init__(self, application, conf, cache, runner, detailed):
        super().__init__(application, conf)
        # oslo.middleware loads only the backends named in the options, by
        # entry point; cache-maint's need the running service, so they are
        # made here and join those.
        self._backends.extensions.extend(
            stevedore.extension.Extension(cls.name, None, cls,
                                          cls(conf, cache, runner))
            for cls in CHECKS)
        if detailed:
            self._show_details = True


class HealthcheckRoute:
    """``/healthcheck``: detailed for loopback and admins, terse otherwise.

    A request with a token is authenticated by ``authenticate`` (a bad
    token is a 401, as anywhere else); an admin's gets the details.
    """

    def __init__(self, application, conf, cache, runner, authenticate):
        self._terse = _Healthcheck(application, conf, cache, runner,
                                   conf.healthcheck.detailed)
        self._detailed = _Healthcheck(application, conf, cache, runner, True)
        self._by_role = authenticate(self._choose_by_role)

    def __call__(self, environ, start_response):
        if _is_loopback(environ.get(util.PEER_KEY)):
            return self._detailed(environ, start_response)
        if environ.get('HTTP_X_AUTH_TOKEN'):
            return self._by_role(environ, start_response)
        return self._terse(environ, start_response)

    def _choose_by_role(self, environ, start_response):
        try:
            environ[util.CONTEXT_KEY].can(base_policies.CONTEXT_IS_ADMIN)
        except exception.PolicyNotAuthorized:
            return self._terse(environ, start_response)
        return self._detailed(environ, start_response)


def _is_loopback(address):
    try:
        return ipaddress.ip_address(address or '').is_loopback
    except ValueError:
        return False
