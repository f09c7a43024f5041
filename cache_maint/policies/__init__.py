"""Policy defaults, for the enforcer and oslopolicy-sample-generator."""

import itertools

from cache_maint.policies import cache


def list_rules():
    return list(itertools.chain(cache.list_rules()))
