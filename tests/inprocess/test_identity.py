"""``identity``: Keystone's failures said as the setting to check.

The failures a real Keystone gives are in tests/keystone; here, the ones
it cannot be made to give on loopback (TLS, timeouts, a forbidden
validation), the exception chains keystonemiddleware raises, and the
holding back of the libraries' own log lines.
"""

import logging
import socket

from keystoneauth1 import exceptions as ksa_exceptions
import pytest
import webob

from cache_maint.api import auth
from cache_maint.api import held_logs
from cache_maint.api import identity
from cache_maint.api.middleware import keystone as keystone_middleware
from tests.support import settings

SECRET = 'n0t-for-the-log'


@pytest.fixture
def conf(tmp_path):
    path = tmp_path / 'cache-maint.conf'
    settings.write_config(path, {
        'api': {'auth_strategy': 'keystone'},
        'keystone_authtoken': {
            'auth_type': 'password',
            'auth_url': 'https://keystone.example:5000/v3',
            'username': 'cache-maint', 'password': SECRET,
            'project_name': 'service', 'user_domain_name': 'Default',
            'project_domain_name': 'Default'}})
    conf = settings.make_conf(tmp_path, args=['--config-file', str(path)])
    auth.register_opts(conf)    # the plugin's options, as a start does
    return conf


class ServiceError(Exception):
    """keystonemiddleware's, raised while handling keystoneauth's."""


def raised_while_handling(cause):
    try:
        try:
            raise cause
        except ksa_exceptions.ClientException:
            raise ServiceError('Identity server rejected authorization')
    except ServiceError as e:
        return e


@pytest.mark.parametrize('error, says', [
    (ksa_exceptions.Forbidden(), 'does not let the service user '
     '(username = cache-maint, user_domain_name = Default, project_name = '
     "service) validate other users' tokens, which its default policy "
     'allows the service and admin roles: give it the service role'),
    (ksa_exceptions.SSLError('certificate verify failed'),
     'TLS with Keystone failed (certificate verify failed): check '
     '[keystone_authtoken] cafile'),
    (ksa_exceptions.ConnectTimeout(
        'Request to https://keystone.example:5000/v3/auth/tokens timed out'),
     'Keystone at [keystone_authtoken] auth_url = '
     'https://keystone.example:5000/v3 did not answer in time'),
    (ksa_exceptions.ConnectFailure(
        'Unable to establish connection to http://10.0.0.9:5000/v3: '
        "HTTPConnectionPool(...): Failed to establish a new connection: "
        "[Errno 113] No route to host'))"),
     'could not connect to the identity endpoint the catalog lists for '
     '[keystone_authtoken] interface = internal ([Errno 113] No route to '
     'host)'),
    (ksa_exceptions.EmptyCatalog(), "Keystone's catalog has no identity "
     'endpoint (serving the v3 API) for [keystone_authtoken] interface = '
     'internal'),
    (ksa_exceptions.InternalServerError(
        method='GET', url='https://keystone.example:5000/v3/auth/tokens?x=1'),
     'Keystone answered 500 to GET https://keystone.example:5000/v3/auth/'
     "tokens: Keystone's own log says why"),
    (KeyError('token'), 'the identity endpoint the catalog lists for '
     '[keystone_authtoken] interface = internal did not answer as '
     "Keystone's identity API does (KeyError: 'token'): check that it is "
     "Keystone's, and [keystone_authtoken] auth_url"),
    (ksa_exceptions.InvalidResponse('Invalid response from server.'),
     'InvalidResponse: Invalid response from server.: check '
     '[keystone_authtoken] auth_url (https://keystone.example:5000/v3)'),
])
def test_explain(conf, error, says):
    line = identity.explain(error, conf)
    assert says in line
    assert SECRET not in line
    assert '\n' not in line


def test_a_retry_is_not_mistaken_for_refused_credentials(conf):
    """keystonemiddleware retries inside ``except Unauthorized``."""
    try:
        try:
            raise ksa_exceptions.Unauthorized()
        except ksa_exceptions.Unauthorized:
            raise ksa_exceptions.ConnectFailure(
                'Unable to establish connection to '
                'https://keystone.example:5000/v3/auth/tokens: [Errno 111] '
                'Connection refused')
    except ksa_exceptions.ConnectFailure as e:
        line = identity.explain(raised_while_handling(e), conf)
    assert line.startswith('could not connect to Keystone at '
                           '[keystone_authtoken] auth_url')


def test_the_keystoneauth_cause_behind_keystonemiddleware(conf):
    line = identity.explain(
        raised_while_handling(ksa_exceptions.Unauthorized()), conf)
    assert line.startswith('Keystone refused the service credentials of '
                           '[keystone_authtoken] (username = cache-maint')


def test_the_innermost_cause(conf):
    """A discovery failure caused by a refused connection is the latter."""
    try:
        try:
            raise ksa_exceptions.ConnectFailure(
                'Unable to establish connection to '
                'https://keystone.example:5000/v3: [Errno 111] Connection '
                'refused')
        except ksa_exceptions.ConnectFailure:
            raise ksa_exceptions.DiscoveryFailure('Could not find versioned '
                                                  'identity endpoints')
    except ksa_exceptions.DiscoveryFailure as e:
        line = identity.explain(e, conf)
    assert line.startswith('could not connect to Keystone at '
                           '[keystone_authtoken] auth_url = '
                           'https://keystone.example:5000/v3 ([Errno 111] '
                           'Connection refused)')


def test_a_long_reason_is_cut(conf):
    line = identity.explain(ksa_exceptions.DiscoveryFailure('x' * 5000),
                            conf)
    assert len(line) < 400


def test_noauth2_is_never_probed(tmp_path):
    conf = settings.make_conf(tmp_path, api__auth_strategy='noauth2')
    assert identity.probe(conf) is None


def test_held_back_lines_are_released_or_dropped(caplog):
    caplog.set_level(logging.DEBUG)
    library = logging.getLogger('keystoneauth.session')
    ours = logging.getLogger('cache_maint.test')
    with held_logs.held_back() as held:
        library.warning('a library warning')
        library.debug('a library debug line')
        ours.warning('our own line')
    assert [r.getMessage() for r in caplog.records] == ['our own line']
    held_logs.release(held, below=logging.INFO)
    assert [r.getMessage() for r in caplog.records] == [
        'our own line', 'a library debug line']
    held_logs.release(held)
    assert 'a library warning' in [r.getMessage() for r in caplog.records]


def test_a_keystone_that_never_answers_delays_a_start_boundedly(
        conf, monkeypatch):
    """Connections accepted, nothing answered: the probe's deadline."""
    with socket.create_server(('127.0.0.1', 0)) as silent:
        port = silent.getsockname()[1]
        conf.set_override('auth_url', 'http://127.0.0.1:%d/v3' % port,
                          group='keystone_authtoken')
        monkeypatch.setattr(identity, 'PROBE_DEADLINE', 1)
        line = identity.probe(conf, timeout=60)
    assert line == (
        'Keystone at [keystone_authtoken] auth_url = http://127.0.0.1:%d/v3 '
        'did not answer within 1 s: check that Keystone is running and '
        'reachable there, and [keystone_authtoken] http_connect_timeout'
        % port)


def test_what_was_held_is_logged_when_the_request_fails_otherwise(
        conf, caplog):
    """An unexpected error inside: the libraries' lines are not lost."""
    def application(environ, start_response):
        logging.getLogger('keystonemiddleware.auth_token').warning(
            'a line of keystonemiddleware')
        raise RuntimeError('boom')

    wrapped = keystone_middleware.KeystoneFailures(
        lambda behind: behind, application, conf)
    with pytest.raises(RuntimeError):
        webob.Request.blank('/v2/cache').get_response(wrapped)
    assert 'a line of keystonemiddleware' in [
        r.getMessage() for r in caplog.records]


def test_an_answer_keystonemiddleware_cannot_read_is_a_503(conf, caplog):
    """An error of its own before the request got through: Keystone's."""
    def keystonemiddleware(behind):
        def authenticate(environ, start_response):
            raise KeyError('token')     # what it raises on a non-token 200
        return authenticate

    def application(environ, start_response):
        raise AssertionError('not authenticated: never reached')

    wrapped = keystone_middleware.KeystoneFailures(
        keystonemiddleware, application, conf)
    response = webob.Request.blank('/v2/cache').get_response(wrapped)
    assert response.status_int == 503
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and lines[0].exc_info is None
    assert "did not answer as Keystone's identity API does" in (
        lines[0].getMessage())
