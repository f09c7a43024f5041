"""Why Keystone cannot validate tokens, said as the setting to check.

keystonemiddleware validates each token with Keystone through the service
credentials and the catalog in ``[keystone_authtoken]``. When that fails it
either answers 503 and logs the low-level error, or, for an interface the
catalog lacks, lets ``EndpointNotFound`` escape as a 500. Both leave the
operator to guess which setting is wrong. ``explain`` turns the error into
one line naming it; ``probe`` makes the same requests keystonemiddleware
would, so that a start and ``cache-maint-status upgrade check`` report the
problem before the first request does.

Only keystoneauth is used here: it is what keystonemiddleware talks to
Keystone with, so its exceptions are the ones to read.
"""

import logging as std_logging
import re
import threading
import urllib.parse

from keystoneauth1 import adapter
from keystoneauth1 import exceptions as ksa_exceptions
from keystoneauth1 import loading
from keystoneauth1 import session
from oslo_config import cfg

from cache_maint.api import auth
from cache_maint.api import held_logs

#: Seconds each request of the probe may take, and the probe as a whole:
#: a start waits for it.
PROBE_TIMEOUT = 5
PROBE_DEADLINE = 10

#: The identity API keystonemiddleware validates tokens with.
_IDENTITY_VERSION = (3, 0)

#: The roles Keystone's default policy lets validate others' tokens
#: (``identity:validate_token``).
VALIDATING_ROLES = frozenset({'service', 'admin'})

#: The system's own words at the bottom of a connection error.
_ERRNO = re.compile(r'\[Errno -?\d+\] [^"\'()\[\]]+')

#: The most of an error's text a line quotes.
_QUOTED = 200


def explain(error, conf):
    """One line saying which ``[keystone_authtoken]`` setting to check.

    ``error`` is what keystonemiddleware raised or logged: a keystoneauth
    exception, or keystonemiddleware's own ServiceError with the
    keystoneauth exception that caused it as its context.
    """
    cause = _keystoneauth_cause(error)
    settings = _Settings(conf)
    if isinstance(cause, ksa_exceptions.EndpointNotFound):
        return settings.missing_endpoint()
    if isinstance(cause, ksa_exceptions.Unauthorized):
        return settings.refused_credentials()
    if isinstance(cause, ksa_exceptions.Forbidden):
        return ('Keystone does not let the service user (%s) validate '
                'other users\' tokens, which its default policy allows the '
                'service and admin roles: give it the service role in '
                'Keystone, or set [%s] username and password to a user that '
                'has it' % (settings.user(), settings.group))
    if isinstance(cause, ksa_exceptions.SSLError):
        return ('TLS with Keystone failed (%s): check [%s] cafile, certfile, '
                'keyfile and insecure' % (_first_line(cause),
                                          auth.AUTHTOKEN_GROUP))
    if isinstance(cause, (ksa_exceptions.ConnectTimeout,
                          ksa_exceptions.RequestTimeout)):
        return ('%s did not answer in time (%s): check that Keystone is '
                'running and reachable, and [%s] http_connect_timeout'
                % (settings.where(cause), _first_line(cause),
                   auth.AUTHTOKEN_GROUP))
    if isinstance(cause, ksa_exceptions.ConnectionError):
        return ('could not connect to %s (%s): check that Keystone is '
                'running and reachable there'
                % (settings.where(cause), _first_line(cause)))
    if isinstance(cause, (ksa_exceptions.DiscoveryFailure,
                          ksa_exceptions.NotFound)):
        return ('[%s] auth_url = %s does not lead to Keystone\'s identity '
                'API (%s): check auth_url'
                % (settings.group, settings.auth_url, _first_line(cause)))
    if isinstance(cause, ksa_exceptions.HttpError):
        return ('Keystone answered %s to %s %s: Keystone\'s own log says '
                'why; [%s] auth_url = %s' % (
                    cause.http_status, cause.method or 'a request',
                    _redacted_url(cause.url), settings.group,
                    settings.auth_url))
    if isinstance(cause, ksa_exceptions.ClientException):
        return ('%s: %s: check [%s] auth_url (%s), the service credentials '
                'and interface (%s)' % (type(cause).__name__,
                                        _first_line(cause), settings.group,
                                        settings.auth_url,
                                        settings.interface))
    # Not keystoneauth's: keystonemiddleware could not read the answer.
    return ('%s did not answer as Keystone\'s identity API does (%s: %s): '
            'check that it is Keystone\'s, and [%s] auth_url'
            % (settings.where(''), type(cause).__name__, _first_line(cause),
               settings.group))


class Problem(str):
    """``explain``'s line, and whether it is certain.

    Not certain: what Keystone's default policy would refuse, which a
    deployment's own policy may allow (the upgrade check warns of it
    rather than fail).
    """

    certain = True


class _Doubtful(Problem):
    certain = False


def probe(conf, timeout=PROBE_TIMEOUT):
    """None if Keystone would validate tokens now, else a Problem.

    Requests what keystonemiddleware requests to validate a token: a token
    for the service credentials, the catalog's identity endpoint for its
    interface and region, and there the validation of a token (the
    service's own: the only one at hand). Keystone lets anyone validate
    their own token, so the service token's roles are read too: under
    Keystone's default policy only ``service`` or ``admin`` may validate
    others' tokens. Nothing is changed in Keystone.
    """
    if conf.api.auth_strategy != 'keystone':
        return None
    found = []
    # In a thread of its own, so that a Keystone that accepts connections
    # and never answers delays a start by PROBE_DEADLINE at most, however
    # many requests keystoneauth makes.
    probing = threading.Thread(target=lambda: found.append(
        _held_probe(conf, timeout)), name='keystone-probe', daemon=True)
    probing.start()
    probing.join(PROBE_DEADLINE)
    if not found:
        return Problem(
            'Keystone at [%s] auth_url = %s did not answer within %d s: '
            'check that Keystone is running and reachable there, and [%s] '
            'http_connect_timeout' % (auth.auth_group(conf),
                                      _Settings(conf).auth_url,
                                      PROBE_DEADLINE, auth.AUTHTOKEN_GROUP))
    return found[0]


def _held_probe(conf, timeout):
    with held_logs.held_back() as held:
        problem = _probe(conf, conf[auth.AUTHTOKEN_GROUP], timeout)
    # keystoneauth's own lines about it are replaced by the one returned.
    held_logs.release(held, below=std_logging.INFO)
    return problem


def _probe(conf, authtoken, timeout):
    try:
        plugin = loading.load_auth_from_conf_options(
            conf, auth.auth_group(conf))
        keystone = adapter.Adapter(
            session.Session(auth=plugin, verify=_verify(authtoken),
                            cert=_cert(authtoken), timeout=timeout),
            service_type='identity', interface=authtoken.interface,
            region_name=authtoken.region_name, version=_IDENTITY_VERSION)
        token = keystone.get_token()
        if keystone.get_endpoint() is None:
            # None for an interface the catalog lacks, and for an endpoint
            # where discovery finds no v3 API: tell them apart.
            listed = keystone.get_endpoint(version=None)
            if listed is None:
                raise ksa_exceptions.EndpointNotFound()
            return Problem(_Settings(conf).not_keystone(listed))
        validated = keystone.get('/auth/tokens',
                                 headers={'X-Subject-Token': token})
        roles = _validated_roles(validated)
    except ksa_exceptions.ClientException as e:
        return Problem(explain(e, conf))
    except ValueError as e:
        return Problem(explain(e, conf))
    if not roles & VALIDATING_ROLES:
        return _Doubtful(explain(ksa_exceptions.Forbidden(), conf))
    return None


def _validated_roles(response):
    """The role names of a token validation's answer; ValueError if none.

    keystonemiddleware reads this answer too, and fails on one that is not
    Keystone's: a load balancer's page, another service.
    """
    try:
        token = response.json()['token']
        return {role['name'] for role in token['roles']}
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError('not a token validation: %s' % (
            _first_line(e) if not isinstance(e, KeyError)
            else 'no %s' % e)) from None


class _Settings:
    """The ``[keystone_authtoken]`` values a line may name."""

    def __init__(self, conf):
        authtoken = conf[auth.AUTHTOKEN_GROUP]
        self.group = auth.auth_group(conf)
        self.interface = authtoken.interface
        self.region = authtoken.region_name
        self.auth_url = self._option(conf, 'auth_url')
        self._conf = conf

    def _option(self, conf, name):
        try:
            return conf[self.group][name]
        except cfg.NoSuchOptError:
            return None

    def user(self):
        """The service user as the settings name it (never the password)."""
        parts = ['username = %s' % self._option(self._conf, 'username')]
        for name in ('user_domain_name', 'project_name'):
            value = self._option(self._conf, name)
            if value:
                parts.append('%s = %s' % (name, value))
        return ', '.join(parts)

    def missing_endpoint(self):
        region = (' in region %s ([%s] region_name)'
                  % (self.region, auth.AUTHTOKEN_GROUP) if self.region
                  else '')
        return ('Keystone\'s catalog has no identity endpoint (serving '
                'the v3 API) for [%s] interface = %s%s: set interface to one '
                'the catalog lists (public, internal or admin), or register '
                'an identity endpoint for it'
                % (auth.AUTHTOKEN_GROUP, self.interface, region))

    def not_keystone(self, url):
        return ('the identity endpoint the catalog lists for [%s] interface '
                '= %s, %s, does not serve Keystone\'s v3 API: correct it in '
                'the catalog, or set interface to another'
                % (auth.AUTHTOKEN_GROUP, self.interface, _redacted_url(url)))

    def refused_credentials(self):
        return ('Keystone refused the service credentials of [%s] (%s): '
                'check username, password, user_domain_name, project_name '
                'and project_domain_name' % (self.group, self.user()))

    def where(self, error):
        """Keystone at auth_url, or the catalog's endpoint for interface."""
        netloc = urllib.parse.urlsplit(self.auth_url or '').netloc
        if netloc and netloc in str(error):
            return 'Keystone at [%s] auth_url = %s' % (self.group,
                                                       self.auth_url)
        return ('the identity endpoint the catalog lists for [%s] '
                'interface = %s' % (auth.AUTHTOKEN_GROUP, self.interface))


def _keystoneauth_cause(error):
    """The keystoneauth exception ``error`` is, or wraps; else ``error``.

    From the outside in: keystonemiddleware's ServiceError is raised while
    handling the keystoneauth exception that caused it, but keystoneauth
    exceptions are not unwrapped further, since keystonemiddleware retries
    a validation inside ``except Unauthorized`` and whatever the retry
    meets carries that Unauthorized as its context. The one exception is
    keystoneauth's DiscoveryFailure, raised while handling what discovery
    met (a refused connection, a 404): that is the reason to report.
    """
    seen, visited = error, set()
    while seen is not None and id(seen) not in visited:
        visited.add(id(seen))
        if isinstance(seen, ksa_exceptions.ClientException):
            under = _underneath(seen)
            if (isinstance(seen, ksa_exceptions.DiscoveryFailure)
                    and isinstance(under, ksa_exceptions.ClientException)):
                return under
            return seen
        seen = _underneath(seen)
    return error


def _underneath(error):
    """What ``error`` was raised from, or while handling."""
    if error.__cause__ is not None:
        return error.__cause__
    return None if error.__suppress_context__ else error.__context__


def _verify(authtoken):
    if authtoken.insecure:
        return False
    return authtoken.cafile or True


def _cert(authtoken):
    if authtoken.certfile and authtoken.keyfile:
        return authtoken.certfile, authtoken.keyfile
    return authtoken.certfile


def _first_line(error):
    """The gist of ``error``: the system's reason if it has one."""
    text = str(error).strip() or type(error).__name__
    reason = _ERRNO.search(text)
    if reason:
        return reason.group(0).strip()
    line = text.splitlines()[0]
    return line if len(line) <= _QUOTED else line[:_QUOTED] + '...'


def _redacted_url(url):
    """``url`` without a query string, which could carry a secret."""
    parts = urllib.parse.urlsplit(url or '')
    return urllib.parse.urlunsplit(parts._replace(query='', fragment=''))
