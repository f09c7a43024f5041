"""Eviction policies: the order in which prune offers images to its targets.

Prune's targets (``cache_maint.targets``) say how much must go; a policy says
which images go first. Every policy ranks the images glance-api recorded,
from Glance's own metadata (size, hits, last access, when cached) and from
what cache-maint remembers of its past prunes; files without a record still
go first, and pins, images in use, ``min_age`` and the watermarks apply
whatever the policy. A policy ranks in memory, once per prune: it adds no
database query per image (the xattr driver, whose hits live in the files,
reads one attribute per image), and its cost per victim does not grow
with the cache.

``lru`` is Glance's own order, exactly. ``lfuda`` and ``adaptive`` keep a
little memory between prunes in the cache's state (``cache_maint.state``),
under ``eviction:<name>``; ``cache-maint-manage simulate``
(``cache_maint.simulation``) replays a trace through the same objects, with
that memory in a dict.
"""

from oslo_log import log as logging

from cache_maint.eviction import adaptive
from cache_maint.eviction import lfuda
from cache_maint.eviction import lru
from cache_maint import exception

LOG = logging.getLogger(__name__)

LRU = lru.LRU.name
LFUDA = lfuda.LFUDA.name
ADAPTIVE = adaptive.Adaptive.name

#: Every policy by its ``[prune] eviction_policy`` name.
POLICIES = {policy.name: policy
            for policy in (lru.LRU, lfuda.LFUDA, adaptive.Adaptive)}
NAMES = tuple(POLICIES)


def make(name, memory=None):
    """A fresh policy of that name, from its ``memory`` (None: new)."""
    return POLICIES[name](memory)


def memory_key(name):
    """Where the state keeps a policy's memory between prunes."""
    return 'eviction:%s' % name


def load(name, state):
    """The policy ``name`` with its memory from ``state`` (a StateStore).

    A memory that cannot be read costs what the policy learnt, never the
    prune: it starts afresh, with a warning.
    """
    policy = POLICIES[name]
    if not policy.remembers:
        return policy()
    try:
        memory = state.get(memory_key(name))
    except exception.StateError as e:
        LOG.warning('The memory of the %s eviction policy cannot be read; '
                    'it starts afresh: %s', name, e)
        memory = None
    return policy(memory)


def save(policy, state):
    """Keep what ``policy`` learnt in ``state``; a failure is logged."""
    memory = policy.dump()
    if memory is None:
        return
    try:
        state.put(memory_key(policy.name), memory)
    except exception.StateError as e:
        LOG.warning('What the %s eviction policy learnt in this prune is '
                    'lost: %s', policy.name, e)
