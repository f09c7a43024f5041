"""The request context: who is asking, and what they may do."""

from oslo_context import context

from cache_maint import policy


class RequestContext(context.RequestContext):
    """A request's credentials plus the enforcer that judges them."""

    def __init__(self, enforcer=None, **kwargs):
        super().__init__(**kwargs)
        self.enforcer = enforcer

    def can(self, action, target=None):
        """Raise PolicyNotAuthorized unless this request may do ``action``."""
        policy.authorize(self.enforcer, self, action, target)
