"""The base rules the cache rules refer to, as Glance defines them.

Glance's cache rules check ``rule:context_is_admin``; a Glance policy file
may refer to these names, so they must exist here too.
"""

from oslo_policy import policy

CONTEXT_IS_ADMIN = 'context_is_admin'
ADMIN = 'rule:%s' % CONTEXT_IS_ADMIN

rules = [
    policy.RuleDefault(
        name='default', check_str='',
        description='Defines the default rule used for policies that '
                    'historically had an empty policy in the supplied '
                    'policy.json file.'),
    policy.RuleDefault(
        name=CONTEXT_IS_ADMIN, check_str='role:admin',
        description='Defines the rule for the is_admin:True check.'),
    policy.RuleDefault(
        name='service_api', check_str='role:service or role:admin',
        description='Default rule for the service-to-service APIs.'),
]


def list_rules():
    return rules
