"""Every route but version discovery needs a valid token: else a 401."""

import json

from tempest.lib.common.utils import data_utils
from tempest.lib import decorators

from cache_maint_tempest_plugin.tests import base


class CacheAuthNegativeTest(base.BaseCacheMaintTest):
    """Requests without a token, or with one Keystone never issued.

    They are sent with the client's ``raw_request``, which adds no token,
    to the client's own base URL.
    """

    def _answers(self, token=None):
        """{'METHOD path': (status, error code)} for every token route.

        The image id is a random one, the same in every route; the routes
        that would change something if they were served (they must not be)
        are then checked to have changed nothing.
        """
        image_id = data_utils.rand_uuid()
        answers = {}
        for method, path, headers in base.TOKEN_ROUTES:
            headers = dict(headers, Accept='application/json')
            if token is not None:
                headers['X-Auth-Token'] = token
            url = '%s/%s' % (self.admin_client.base_url,
                             path.format(id=image_id))
            resp, body = self.admin_client.raw_request(url, method,
                                                       headers=headers)
            try:
                code = json.loads(body)['error']['code']
            except (ValueError, TypeError, KeyError):
                code = None
            answers['%s %s' % (method, path)] = (resp.status, code)
        self.assertNotIn(image_id,
                         self.admin_client.list_cache()['queued_images'])
        self.assertNotIn(image_id, self.pinned_ids())
        return answers

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('eb138826-30eb-48df-a6a3-c45c0bccbc2c')
    def test_requests_without_token(self):
        """401, with a JSON error whose code is 401, on every route."""
        answers = self._answers()
        self.assertEqual({route: (401, 401) for route in answers}, answers)

    @decorators.attr(type=['negative'])
    @decorators.idempotent_id('8d188e5f-ac79-451b-8768-186efee60872')
    def test_requests_with_invalid_token(self):
        """401, with a JSON error whose code is 401, on every route."""
        answers = self._answers(token=data_utils.rand_uuid_hex())
        self.assertEqual({route: (401, 401) for route in answers}, answers)
