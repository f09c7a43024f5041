"""Handlers of the image cache maintenance routes."""

from cache_maint.api import util
from cache_maint.policies import cache as policies


def _run(req, policy, task):
    req.environ[util.CONTEXT_KEY].can(policy)
    util.read_empty_body(req)
    runner = req.environ[util.RUNNER_KEY]
    wait = req.environ[util.CONF_KEY].api.task_wait_timeout
    result = getattr(runner, task)(wait=wait, trigger='API')
    return util.json_response(200, result.to_dict())


def clean_cache(req):
    """POST /v2/cache/clean : remove failed and stalled downloads."""
    return _run(req, policies.CLEAN, 'clean')


def prune_cache(req):
    """POST /v2/cache/prune : evict LRU images down to the size limit."""
    return _run(req, policies.PRUNE, 'prune')
