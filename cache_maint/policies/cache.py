"""Policies of the image cache routes, under Glance's own rule names.

The names and defaults are Glance's (glance/policies/cache.py): admin only,
through ``rule:context_is_admin``. A Glance policy file that restricts or
opens these actions means the same here.
"""

from oslo_policy import policy

from cache_maint.policies import base

ADMIN = base.ADMIN

CLEAN = 'cache_clean'
PRUNE = 'cache_prune'

rules = [
    policy.DocumentedRuleDefault(
        name=CLEAN,
        check_str=ADMIN,
        scope_types=['project'],
        description='Clean the image cache: remove failed downloads and '
                    'stalled partial downloads.',
        operations=[{'path': '/v2/cache/clean', 'method': 'POST'}]),
    policy.DocumentedRuleDefault(
        name=PRUNE,
        check_str=ADMIN,
        scope_types=['project'],
        description='Prune the image cache: evict least recently used '
                    'images until it is under its size limit.',
        operations=[{'path': '/v2/cache/prune', 'method': 'POST'}]),
]


def list_rules():
    return rules
