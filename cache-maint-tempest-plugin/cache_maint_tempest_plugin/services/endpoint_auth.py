"""An auth provider that sends requests to one given endpoint.

cache-maint serves the image cache API of one glance-api node, and an
operator usually gives its URL directly rather than registering every node
in the Keystone catalog. tempest's ``RestClient`` asks its auth provider
for both the token and the URL of each request (``auth_request``, through
``_decorate_request`` and ``base_url``), and tempest's Keystone providers
only know the catalog. ``EndpointAuthProvider`` wraps the provider of the
test credentials: the token, its cache and its renewal stay that
provider's; the base URL is the given endpoint, with the client's
``api_version`` and ``skip_path`` filters applied as to a catalog URL.

Being an ``AuthProvider``, it keeps tempest's alternate auth data
(``set_alt_auth_data``) working for a client built on it.
"""

import copy
import re
from urllib import parse

from tempest.lib import auth


class EndpointAuthProvider(auth.AuthProvider):
    """Requests to ``endpoint``, with the tokens of ``auth_provider``."""

    #: Whatever scope the wrapped Keystone provider was given.
    SCOPES = auth.KeystoneV3AuthProvider.SCOPES

    def __init__(self, auth_provider, endpoint):
        self.auth_provider = auth_provider
        self.endpoint = endpoint
        super().__init__(auth_provider.credentials,
                         scope=auth_provider.scope)

    def _get_auth(self):
        # The wrapped provider's token, from its cache or renewed by it.
        return self.auth_provider.get_auth()

    def _fill_credentials(self, auth_data_body):
        # The wrapped provider fills the credentials both share.
        pass

    def is_expired(self, auth_data):
        return self.auth_provider.is_expired(auth_data)

    def clear_auth(self):
        super().clear_auth()
        self.auth_provider.clear_auth()

    def get_token(self):
        return self.get_auth()[0]

    def base_url(self, filters, auth_data=None):
        """The endpoint, with the version and path filters applied."""
        return auth.apply_url_filters(self.endpoint, filters)

    def _decorate_request(self, filters, method, url, headers=None,
                          body=None, auth_data=None):
        if auth_data is None:
            auth_data = self.get_auth()
        token, _ = auth_data
        base_url = self.base_url(filters=filters, auth_data=auth_data)
        headers = copy.deepcopy(headers) if headers is not None else {}
        headers['X-Auth-Token'] = str(token)
        if not url:
            return base_url, headers, body
        parts = list(parse.urlparse('/'.join([base_url, url])))
        parts[2] = re.sub('/{2,}', '/', parts[2])
        return parse.urlunparse(parts), headers, body
