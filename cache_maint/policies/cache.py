"""Policies of the image cache routes, under Glance's own rule names.

The names and defaults are Glance's (glance/policies/cache.py): admin only,
through ``rule:context_is_admin``. A Glance policy file that restricts or
opens these actions means the same here.
"""

from oslo_policy import policy

from cache_maint.policies import base

ADMIN = base.ADMIN

LIST = 'cache_list'
QUEUE = 'cache_image'
DELETE = 'cache_delete'
NODES = 'list_cached_nodes'
CLEAN = 'cache_clean'
PRUNE = 'cache_prune'
RUNS = 'cache_runs'
STATUS = 'cache_status'
PIN = 'cache_pin'
UNPIN = 'cache_unpin'
PINS_LIST = 'cache_pins_list'

rules = [
    policy.DocumentedRuleDefault(
        name=LIST,
        check_str=ADMIN,
        scope_types=['project'],
        description='List the cached and the queued images.',
        # python-openstackclient looks the image up before queue and delete.
        operations=[{'path': '/v2/cache', 'method': 'GET'},
                    {'path': '/v2/images/{image_id}', 'method': 'GET'}]),
    policy.DocumentedRuleDefault(
        name=QUEUE,
        check_str=ADMIN,
        scope_types=['project'],
        description='Queue an image for caching.',
        operations=[{'path': '/v2/cache/{image_id}', 'method': 'PUT'}]),
    policy.DocumentedRuleDefault(
        name=DELETE,
        check_str=ADMIN,
        scope_types=['project'],
        description='Delete one image, or all, from the cache and/or the '
                    'queue.',
        operations=[{'path': '/v2/cache', 'method': 'DELETE'},
                    {'path': '/v2/cache/{image_id}', 'method': 'DELETE'}]),
    policy.DocumentedRuleDefault(
        name=NODES,
        check_str=ADMIN,
        scope_types=['project'],
        description='List the nodes that have cached an image '
                    '(centralized_db driver).',
        operations=[{'path': '/v2/cache/nodes/{image_id}',
                     'method': 'GET'}]),
    policy.DocumentedRuleDefault(
        name=CLEAN,
        check_str=ADMIN,
        scope_types=['project'],
        description='Clean the image cache: remove failed downloads and '
                    'stalled partial downloads (with ?dry_run=true, list '
                    'what would go).',
        operations=[{'path': '/v2/cache/clean', 'method': 'POST'}]),
    policy.DocumentedRuleDefault(
        name=PRUNE,
        check_str=ADMIN,
        scope_types=['project'],
        description='Prune the image cache: evict least recently used '
                    'images until it is under its size limit (with '
                    '?dry_run=true, list what would go).',
        operations=[{'path': '/v2/cache/prune', 'method': 'POST'}]),
    # Not one of Glance's: cache-maint's own record of its runs.
    policy.DocumentedRuleDefault(
        name=RUNS,
        check_str=ADMIN,
        scope_types=['project'],
        description="Show cache-maint's record of its recent clean and "
                    'prune runs.',
        operations=[{'path': '/v2/cache/runs', 'method': 'GET'}]),
    policy.DocumentedRuleDefault(
        name=STATUS,
        check_str=ADMIN,
        scope_types=['project'],
        description="Show the image cache's size, limits, downloads in "
                    'progress, filesystem, pins and the last and next run '
                    'of each task.',
        operations=[{'path': '/v2/cache/status', 'method': 'GET'}]),
    policy.DocumentedRuleDefault(
        name=PIN,
        check_str=ADMIN,
        scope_types=['project'],
        description='Pin an image: prune never evicts it.',
        operations=[{'path': '/v2/cache/pins/{image_id}', 'method': 'PUT'}]),
    policy.DocumentedRuleDefault(
        name=UNPIN,
        check_str=ADMIN,
        scope_types=['project'],
        description='Unpin an image: prune may evict it again.',
        operations=[{'path': '/v2/cache/pins/{image_id}',
                     'method': 'DELETE'}]),
    policy.DocumentedRuleDefault(
        name=PINS_LIST,
        check_str=ADMIN,
        scope_types=['project'],
        description='List the pinned images.',
        operations=[{'path': '/v2/cache/pins', 'method': 'GET'}]),
]


def list_rules():
    return rules
