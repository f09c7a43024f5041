"""Real clients from PyPI against a running cache-maint: shared helpers."""

import dataclasses
import os
import subprocess

import pytest

from tests.support import caches
from tests.support import processes


KIB = caches.KIB

#: The service's image_cache_max_size: the three images of Filled exceed it.
MAX_SIZE = 10 * KIB


@dataclasses.dataclass(frozen=True)
class State:
    """What a client may change in the cache: files, records, queue."""

    images: frozenset = frozenset()
    rows: frozenset = frozenset()
    queue: frozenset = frozenset()
    invalid: frozenset = frozenset()
    incomplete: frozenset = frozenset()

    def __post_init__(self):
        for field in dataclasses.fields(self):
            object.__setattr__(self, field.name,
                               frozenset(getattr(self, field.name)))

    def but(self, **changes):
        """This state with some parts replaced."""
        return dataclasses.replace(self, **changes)


def state(cache):
    """The cache's State, read from the disk."""
    return State(cache.images(), cache.rows(),
                 *(cache.listdir(sub)
                   for sub in ('queue', 'invalid', 'incomplete')))


@dataclasses.dataclass
class Filled:
    """One of everything: what each cache request has to act on."""

    cache: caches.SqliteCache
    cached: list      # three 6 KiB images, least recently used first
    queued: str
    invalid: str      # a failed download: clean removes it
    stalled: str      # an hour-old download: clean removes it
    fresh: str        # a download in progress: clean keeps it

    @property
    def before(self):
        """The State as filled."""
        return State(self.cached, self.cached, [self.queued],
                     [self.invalid], [self.stalled, self.fresh])

    def after(self, request):
        """The State once ``request`` succeeded, as Glance would leave it."""
        cached, queued = self.before.images, self.before.queue
        return {
            'clear': self.before.but(images=(), rows=(), queue=()),
            'clear cache': self.before.but(images=(), rows=()),
            'clear queue': self.before.but(queue=()),
            'clean': self.before.but(invalid=(), incomplete=[self.fresh]),
            # 18 KiB over a 10 KiB limit: the two least recently used go.
            'prune': self.before.but(images=self.cached[2:],
                                     rows=self.cached[2:]),
            'delete': self.before.but(images=cached - {self.cached[0]},
                                      rows=cached - {self.cached[0]},
                                      queue=queued - {self.queued}),
        }[request]

    def check(self, expected):
        assert state(self.cache) == expected


def run(name, args, home, environment=()):
    """Run a client's console script; its only OS_* vars ``environment``."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith('OS_')}
    env.update(environment)
    env['HOME'] = str(home)
    args = [str(arg) for arg in args]
    try:
        return subprocess.run([processes.console_script(name)] + args,
                              env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True,
                              timeout=processes.DEADLINE)
    except subprocess.TimeoutExpired as error:
        pytest.fail('%s %s did not exit within %s s: %s'
                    % (name, ' '.join(args), processes.DEADLINE, error))


def fill(cache):
    """Fill ``cache`` with one of everything; the Filled, checked."""
    cached = [cache.add_image(size=6 * caches.KIB, last_accessed=1.7e9 + i,
                              hits=i) for i in range(3)]
    filled = Filled(cache, cached, cache.queue(), cache.add_invalid(),
                    cache.add_incomplete(age=3600), cache.add_incomplete())
    filled.check(filled.before)
    return filled
