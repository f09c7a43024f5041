"""Authentication: keystonemiddleware's auth_token, or noauth2.

Both strategies end the same way: the identity headers keystonemiddleware
defines (``X-User-Id``, ``X-Project-Id``, ``X-Roles``...) are set, and
``middleware.context`` turns them into a RequestContext for the handlers.
"""

from keystoneauth1 import exceptions as ksa_exceptions
from keystoneauth1 import loading
from keystonemiddleware import auth_token
import webob

from cache_maint.api import util
from cache_maint import exception

#: keystonemiddleware's own group.
AUTHTOKEN_GROUP = 'keystone_authtoken'

#: Seconds keystonemiddleware waits for each answer of Keystone's, unless
#: ``[keystone_authtoken] http_connect_timeout`` says otherwise.
HTTP_CONNECT_TIMEOUT = 10

_IDENTITY_HEADERS = ('X-Identity-Status', 'X-User-Id', 'X-User-Name',
                     'X-Project-Id', 'X-Project-Name', 'X-Roles',
                     'X-User-Domain-Id', 'X-Project-Domain-Id',
                     'X-Service-Roles', 'X-System-Scope')


class NoAuth2:
    """Development authentication: the token names the caller.

    The token ``admin``, exactly, is an admin of project ``admin``; any
    other token of printable ASCII is a member of a project named after
    it; no token, or one with anything else in it, is a 401. Only HTTP's
    own whitespace (space, tab) around it is ignored: ``admin`` followed by
    a vertical tab or a Unicode space is not ``admin``. Identity headers
    sent by the client are discarded, never trusted.
    """

    ADMIN = 'admin'

    def __init__(self, application):
        self._application = application

    def __call__(self, environ, start_response):
        req = webob.Request(environ)
        for header in _IDENTITY_HEADERS:
            req.headers.pop(header, None)
        token = req.headers.get('X-Auth-Token', '').strip(' \t')
        if not token or not _printable_ascii(token):
            response = util.error_response(
                401, 'Authentication required: send an X-Auth-Token header '
                     'of printable ASCII characters.')
            return response(environ, start_response)
        roles = ('admin,member,reader' if token == self.ADMIN
                 else 'member,reader')
        req.headers.update({'X-Identity-Status': 'Confirmed',
                            'X-User-Id': token, 'X-User-Name': token,
                            'X-Project-Id': token, 'X-Project-Name': token,
                            'X-Roles': roles})
        return self._application(environ, start_response)


def _printable_ascii(text):
    return all(' ' < c < '\x7f' for c in text)


def keystone(application, conf):
    """keystonemiddleware's auth_token, configured from ``conf``."""
    return auth_token.AuthProtocol(application, {'oslo_config_config': conf})


def auth_group(conf):
    """The group holding the auth plugin's options (``auth_section``)."""
    return conf[AUTHTOKEN_GROUP].auth_section or AUTHTOKEN_GROUP


def register_opts(conf):
    """keystonemiddleware's options, and those of the plugin it would load.

    The plugin's options (``auth_url``, ``username``...) depend on
    ``auth_type``: call this again once the files are parsed.
    """
    for group, opts in auth_token.list_opts():
        conf.register_opts(opts, group=group)
    # keystonemiddleware waits for Keystone without limit by default: one
    # that accepts connections and never answers would hold every API
    # thread. The operator's value still applies.
    conf.set_default('http_connect_timeout', HTTP_CONNECT_TIMEOUT,
                     group=AUTHTOKEN_GROUP)
    group = auth_group(conf)
    loading.register_auth_conf_options(conf, group)
    plugin = conf[group].auth_type
    if plugin:
        try:
            loader = loading.get_plugin_loader(plugin)
        except ksa_exceptions.NoMatchingPlugin:
            return      # check() says so
        conf.register_opts(loading.get_auth_plugin_conf_options(loader),
                           group=group)


def check(conf):
    """Raise ConfigError unless keystonemiddleware can validate tokens.

    Without an auth plugin it answers every request, tokenless ones
    included, with a 500.
    """
    if conf.api.auth_strategy != 'keystone':
        return
    group = auth_group(conf)
    plugin = conf[group].auth_type
    if not plugin:
        raise exception.ConfigError(
            '[api] auth_strategy = keystone, but [%s] sets no auth_type, so '
            'no token could be validated: read glance-api.conf (which has '
            'a [%s] section) before cache-maint.conf, or set [api] '
            'auth_strategy = noauth2 for development'
            % (group, AUTHTOKEN_GROUP))
    try:
        loader = loading.get_plugin_loader(plugin)
        loader.load_from_options_getter(lambda opt: conf[group][opt.dest])
    except ksa_exceptions.NoMatchingPlugin:
        raise exception.ConfigError(
            '[%s] auth_type = %s: keystoneauth has no such plugin'
            % (group, plugin))
    except ksa_exceptions.MissingRequiredOptions as e:
        raise exception.ConfigError(
            '[%s] auth_type = %s needs %s' % (
                group, plugin, ', '.join(opt.dest for opt in e.options)))
