"""The plugin's options: ``[service_available] cache_maint`` and a group.

cache-maint serves the image cache API of one glance-api node, so its URL
is usually given directly (``endpoint``). When it is not, the service is
looked up in the Keystone catalog, under ``catalog_type``, with
``endpoint_type`` and ``region`` as for tempest's own services.
"""

from oslo_config import cfg

service_option = cfg.BoolOpt(
    'cache_maint',
    default=True,
    help='Whether or not cache-maint, the image cache maintenance service, '
         'is expected to be available.')

cache_maint_group = cfg.OptGroup(
    name='cache_maint',
    title='cache-maint options',
    help='Where the cache-maint API under test is, and what the cloud '
         'around it offers to the tests.')

CacheMaintGroup = [
    cfg.URIOpt(
        'endpoint',
        schemes=['http', 'https'],
        help='URL of the cache-maint API under test, without a version '
             '(for example http://127.0.0.1:9393, its default bind address '
             'on the node). Requests go there with the token of the test '
             'credentials, whatever the catalog says. When unset, the '
             'endpoint is looked up in the catalog under catalog_type.'),
    cfg.StrOpt(
        'catalog_type',
        default='image-cache',
        help='Catalog type of the cache-maint service, used when endpoint '
             'is unset. cache-maint serves the API of one node\'s cache, '
             'so it is registered under a type of its own, not as another '
             '"image" endpoint.'),
    cfg.StrOpt(
        'endpoint_type',
        default='publicURL',
        choices=['public', 'admin', 'internal',
                 'publicURL', 'adminURL', 'internalURL'],
        help='The endpoint type to use for the cache-maint service, used '
             'when endpoint is unset.'),
    cfg.StrOpt(
        'region',
        default='',
        help='The cache-maint region name to use, used when endpoint is '
             'unset. If empty, the value of identity.region is used '
             'instead.'),
    cfg.BoolOpt(
        'glance_caching',
        default=False,
        help='Whether the glance-api behind the image endpoint caches the '
             'images it serves in the very cache cache-maint maintains '
             '(one node, or the node cache-maint runs on). The scenario '
             'test, which downloads an image through Glance and removes it '
             'from the cache through cache-maint, runs only when it is.'),
    cfg.IntOpt(
        'scenario_image_max_size',
        default=256 * 1024 * 1024,
        min=0,
        help='The largest image, in bytes, the scenario may upload to show '
             'a prune evicting an image cached through Glance: one byte '
             'over the cache\'s high watermark, so that a prune must evict '
             'it. Where the watermark is higher, that test is skipped '
             '(the delete test still runs).'),
    cfg.BoolOpt(
        'cache_over_limit',
        default=False,
        help='Whether the cache is filled over its size limit before the '
             'tests run, as the CI job does. The prune test then fails if '
             'it finds the cache within its limit, rather than checking '
             'that a prune of a cache within its limit removes nothing, so '
             'that the over-limit case cannot silently go untested.'),
]
