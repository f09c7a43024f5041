"""The policy enforcer: built from a ConfigOpts, one per application."""

from oslo_config import cfg
from oslo_log import log as logging
from oslo_policy import policy

from cache_maint import conf as cm_conf
from cache_maint import exception
from cache_maint import policies

LOG = logging.getLogger(__name__)


def make_enforcer(conf):
    """An enforcer with cache-maint's defaults and the operator's file."""
    enforcer = policy.Enforcer(conf)
    enforcer.register_defaults(policies.list_rules())
    enforcer.load_rules()
    return enforcer


def get_enforcer():
    """Entry point for oslopolicy-policy-generator and -validator."""
    conf = cfg.ConfigOpts()
    cm_conf.register_opts(conf)
    conf([], project='cache-maint')
    return make_enforcer(conf)


def authorize(enforcer, context, action, target=None):
    """Raise PolicyNotAuthorized unless ``context`` may do ``action``."""
    target = target or {'project_id': context.project_id,
                        'user_id': context.user_id}
    try:
        enforcer.authorize(action, target, context, do_raise=True)
    except (policy.PolicyNotAuthorized, policy.InvalidScope):
        LOG.debug('Policy %s refused user %s of project %s', action,
                  context.user_id, context.project_id)
        raise exception.PolicyNotAuthorized(
            'policy %s refused the request' % action, action=action)
