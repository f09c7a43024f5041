"""glance-api's cache writes and reads, with Glance 33's own code, for a while.

Run as ``python -m tests.faults.glance_writer ARGS`` beside a cache-maint
that prunes the same cache: it caches images the way glance-api's cache
middleware does (``ImageCache.get_caching_iter``, which writes to
``incomplete/``, renames into place and records the image), and reads
cached ones (a hit), over a small pool of images, so that images prune
evicts are soon cached again. Glance logs, and swallows, whatever goes
wrong while it commits a download to the cache; those log records and the
errors of reads are what this reports, as JSON on stdout:

``{"cached": n, "read": n, "evicted while read": n, "failures": {kind:
count}, "examples": [...]}``

where a kind is ``insert rejected`` (the image's old record was still
there), ``lock timeout`` (sqlite locked for Glance's 2 s), ``download
removed`` (a file of ``incomplete/`` went away mid-write) or ``other``.
"""

import argparse
import collections
import json
import logging
import random
import sys
import time
import uuid

from tests.support import glance as glance_harness


class _Failures(logging.Handler):
    """Counts the errors Glance logs, by kind."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.kinds = collections.Counter()
        self.examples = []

    def emit(self, record):
        self.add(record.getMessage())

    def add(self, message):
        lowered = message.lower()
        if 'unique' in lowered or 'duplicate' in lowered:
            kind = 'insert rejected'
        elif 'locked' in lowered or 'timeout' in lowered:
            kind = 'lock timeout'
        elif 'no such file' in lowered:
            kind = 'download removed'
        else:
            kind = 'other'
        self.kinds[kind] += 1
        if len(self.examples) < 5:
            self.examples.append(message[:500])


def run(args):
    failures = _Failures()
    logging.getLogger('glance').addHandler(failures)
    logging.getLogger('glance').setLevel(logging.ERROR)
    rnd = random.Random(args.seed)
    pool = [str(uuid.UUID(int=rnd.getrandbits(128), version=4))
            for _ in range(args.images)]
    cache = glance_harness.GlanceImageCache(
        args.cache_dir, driver=args.driver, connection=args.connection,
        node_url=args.node_url)
    counts = collections.Counter()
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        image_id = rnd.choice(pool)
        try:
            if cache.is_cached(image_id):
                cache.read(image_id)
                counts['read'] += 1
            elif cache.cache(image_id, b'x' * rnd.randint(512, 4096)):
                counts['cached'] += 1
        except FileNotFoundError:
            # Evicted between Glance's is_cached() and its open(): a miss,
            # as with any pruner, Glance's own included.
            counts['evicted while read'] += 1
        except Exception as e:
            failures.add('%s: %s' % (type(e).__name__, e))
        time.sleep(args.pause)
    cache.close()
    json.dump({'cached': counts['cached'], 'read': counts['read'],
               'evicted while read': counts['evicted while read'],
               'failures': dict(failures.kinds),
               'examples': failures.examples}, sys.stdout)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--cache-dir', required=True)
    parser.add_argument('--driver', required=True)
    parser.add_argument('--connection')
    parser.add_argument('--node-url', default=glance_harness.DEFAULT_NODE_URL)
    parser.add_argument('--seconds', type=float, default=60)
    parser.add_argument('--images', type=int, default=40)
    parser.add_argument('--pause', type=float, default=0.01)
    parser.add_argument('--seed', type=int, default=11)
    run(parser.parse_args())


if __name__ == '__main__':
    main()
