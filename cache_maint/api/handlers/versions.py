"""Version discovery: the documents glanceclient and keystoneauth read.

glanceclient looks for the exact ids ``v2.14`` (cache API) and ``v2.18``
(clean and prune) with a usable status before it calls the cache API;
tempest wants 300 at the root. Entries carry only ``id``, ``status`` and
``links``: adding ``version``/``min_version`` would make keystoneauth start
microversion negotiation, which Glance does not do. Which cache-maint
answers is told beside the list, in ``build_info``, where no client looks
for versions.
"""

from cache_maint.api import util
from cache_maint import version

CURRENT = 'v2.18'
SUPPORTED = ('v2.17', 'v2.16', 'v2.15', 'v2.14')


def _document(req):
    href = req.host_url + req.script_name + '/v2/'
    links = [{'rel': 'self', 'href': href}]
    versions = [{'id': CURRENT, 'status': 'CURRENT', 'links': links}]
    versions += [{'id': version, 'status': 'SUPPORTED', 'links': links}
                 for version in SUPPORTED]
    return {'versions': versions,
            'build_info': {'name': version.DISTRIBUTION,
                           'version': version.version_string()}}


def multiple_choices(req):
    """GET / : the versions document, as 300 Multiple Choices."""
    return util.json_response(300, _document(req))


def list_versions(req):
    """GET /versions : the versions document."""
    return util.json_response(200, _document(req))
