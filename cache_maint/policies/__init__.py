"""Policy defaults, for the enforcer and oslopolicy-sample-generator."""

from cache_maint.policies import base
from cache_maint.policies import cache


def list_rules():
    return base.list_rules() + cache.list_rules()
