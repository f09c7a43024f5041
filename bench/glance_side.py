"""Glance 33's side of the benchmark, in a process of its own.

    python -m bench.glance_side prune|clean|list --driver D --cache-dir C ...

Glance's own ``ImageCache`` is built on the cache (start-up, not timed),
then only the operation itself is timed, as ``time.perf_counter()`` around
``ImageCache.prune()``, ``clean()`` or ``get_cached_images()``. It prints
one JSON line: ``{"seconds": [...], "result": ...}``. The parent reads this
process's peak RSS from the kernel when it exits.
"""

import argparse
import json
import time

from tests.support import glance as glance_harness


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('operation', choices=('prune', 'clean', 'list'))
    parser.add_argument('--driver', required=True)
    parser.add_argument('--cache-dir', required=True)
    parser.add_argument('--max-size', type=int, default=0)
    parser.add_argument('--stall-time', type=int, default=86400)
    parser.add_argument('--connection')
    parser.add_argument('--node-url', default=glance_harness.DEFAULT_NODE_URL)
    parser.add_argument('--repeat', type=int, default=1)
    args = parser.parse_args()

    cache = glance_harness.GlanceImageCache(
        args.cache_dir, args.driver, max_size=args.max_size,
        connection=args.connection, node_url=args.node_url,
        stall_time=args.stall_time)
    image_cache = cache.image_cache
    cache.driver    # puts this cache's settings into Glance's CONF
    operation = {
        'prune': image_cache.prune,
        'clean': lambda: image_cache.clean(args.stall_time),
        'list': lambda: len(image_cache.get_cached_images()),
    }[args.operation]
    seconds = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        result = operation()
        seconds.append(time.perf_counter() - started)
    cache.close()
    print(json.dumps({'seconds': seconds, 'result': result}))


if __name__ == '__main__':
    main()
