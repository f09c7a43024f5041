"""The one JSON schema glanceclient needs to stay on the v2 API.

Without ``--os-image-api-version 2``, glanceclient downloads three schemas
before its first v2 call and falls back to the v1 API (which has no cache
commands) only if all three downloads fail. Serving the smallest of them,
the metadefs resource type association, keeps ``glance cache-prune`` on v2.
It describes Glance's resource type association object faithfully, so the
copy glanceclient caches in ``~/.glanceclient`` stays right for Glance too.
"""

from cache_maint.api import util

RESOURCE_TYPE_ASSOCIATION = {
    'name': 'resource_type_association',
    'properties': {
        'name': {
            'type': 'string', 'maxLength': 80,
            'description': 'Name of the resource type, aligned with the '
                           'Heat resource type name where possible.'},
        'prefix': {
            'type': 'string', 'maxLength': 80,
            'description': 'Prefix of the namespace properties when they '
                           'apply to this resource type, separator '
                           'included (e.g. a colon).'},
        'properties_target': {
            'type': 'string', 'maxLength': 80,
            'description': 'Which key/value pairs of the resource the '
                           'namespace properties target, where it has '
                           'several.'},
        'created_at': {
            'type': 'string', 'format': 'date-time', 'readOnly': True,
            'description': 'When the association was created.'},
        'updated_at': {
            'type': 'string', 'format': 'date-time', 'readOnly': True,
            'description': 'When the association was last modified.'},
    },
    'additionalProperties': False,
    'required': ['name'],
}


def get_resource_type_schema(req):
    """GET /v2/schemas/metadefs/resource_type : a static JSON schema."""
    return util.json_response(200, RESOURCE_TYPE_ASSOCIATION)
