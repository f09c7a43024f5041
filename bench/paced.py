"""glance-api's reads while cache-maint prunes several GB of large images.

    python -m bench.paced [--images 4] [--image-size 1G] [--rate 200M]

A cache holds ``--images`` large images (real data, flushed to disk) and
one image glance-api keeps serving. A reader process plays glance-api
sending that image to clients: it reads it in Glance's 64 KiB chunks, over
and over, after dropping its pages from the page cache each time (as a
cache too large for memory would have them), and times every read. Its
latencies are reported:

* idle: no prune;
* unpaced: while the real ``cache-maint`` prunes the large images as fast
  as it can (``[prune] max_delete_rate = 0``), and for ``--after`` seconds
  after (a filesystem may free extents in the background);
* paced: the same prune with ``max_delete_rate = --rate``.

Each prune is one admin ``POST /v2/cache/prune`` on a cache rebuilt for
it. The bench judges nothing, but prints issue 13's target for the paced
case (p99 within 2 times the idle p99) as met or missed.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

from bench import tables
from cache_maint.conf import prune as prune_opts
from tests.support import caches
from tests.support import load
from tests.support import plans
from tests.support import running

MIB = 1024 * 1024

#: glance-api's read size (glance_store's CHUNKSIZE for the cache).
CHUNK = 64 * 1024

#: The image the reader keeps serving: most recently used, never a victim.
SERVED_SIZE = 64 * MIB


def write_image(cache, image_id, size, accessed, fill):
    """A real, flushed image of ``size`` bytes, recorded as cached."""
    path = os.path.join(cache.path, image_id)
    block = fill * MIB
    with open(path, 'wb') as f:
        left = size
        while left > 0:
            left -= f.write(block[:min(left, MIB)])
        f.flush()
        os.fsync(f.fileno())
        # Its pages are of no use to anyone: as on a busy node, not cached.
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    cache.record([plans.Image(image_id, size, accessed, time.time() - 3600)])


def build(path, images, image_size):
    """A sqlite cache: ``images`` large victims and the served image."""
    shutil.rmtree(path, ignore_errors=True)
    cache = caches.SqliteCache(path)
    for i in range(images):
        write_image(cache, caches.new_id(), image_size, 1000.0 + i, b'v')
    served = caches.new_id()
    write_image(cache, served, SERVED_SIZE, time.time(), b's')
    return cache, os.path.join(cache.path, served)


def read_forever(path):
    """The reader: glance-api serving ``path``; one line per read.

    Each line is ``<monotonic time at the end> <seconds the read took>``.
    Runs until killed.
    """
    out = sys.stdout
    fd = os.open(path, os.O_RDONLY)
    while True:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        offset = 0
        while True:
            began = time.monotonic()
            data = os.pread(fd, CHUNK, offset)
            ended = time.monotonic()
            if not data:
                break
            offset += len(data)
            out.write('%.6f %.6f\n' % (ended, ended - began))
        out.flush()


class Reader:
    """The reader process, and the latencies it reported."""

    def __init__(self, path, log_path):
        self.log_path = log_path
        self._log = open(log_path, 'w')
        self.process = subprocess.Popen(
            [sys.executable, '-m', 'bench.paced', '--read', path],
            stdout=self._log)

    def stop(self):
        self.process.kill()
        self.process.wait()
        self._log.close()

    def latencies(self, start, end):
        """Seconds each read took that ended within [start, end]."""
        found = []
        with open(self.log_path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2:
                    ended, took = float(parts[0]), float(parts[1])
                    if start <= ended <= end:
                        found.append(took)
        return sorted(found)


def one_case(workdir, args, rate):
    """Reads during an idle window, then during a prune at ``rate``."""
    cache_dir = os.path.join(workdir, 'cache')
    cache, served = build(cache_dir, args.images, args.image_size)
    # No timer: the bench's own request is the one prune.
    daemon = running.Daemon(workdir, cache_dir,
                            image_cache_max_size=SERVED_SIZE,
                            cache_prune_interval=0, cache_clean_interval=0,
                            debug='false',
                            sections={'prune': {'max_delete_rate': rate}})
    daemon.start()
    reader = Reader(served, os.path.join(workdir, 'reads-%s.txt' % rate))
    try:
        time.sleep(1.0)                     # the reader settles in
        idle_start = time.monotonic()
        time.sleep(args.idle)
        began = time.monotonic()
        response = daemon.post('prune')
        ended = time.monotonic()
        time.sleep(args.after)
        window_end = time.monotonic()
    finally:
        reader.stop()
        daemon.stop()
    if response.status_code != 200:
        sys.exit('the prune failed: %s %s' % (response.status_code,
                                              response.text))
    pruned = response.json()
    if pruned['total_files_pruned'] != args.images:
        sys.exit('the prune evicted %s images, not %d'
                 % (pruned['total_files_pruned'], args.images))
    return {
        'idle': reader.latencies(idle_start, began),
        'prune': reader.latencies(began, window_end),
        'seconds': ended - began,
        'bytes': pruned['total_bytes_pruned'],
    }


def _ms_at(latencies, fraction):
    return tables.fmt(load.ms(load.percentile(latencies, fraction)), '%.2f')


def _p99_ratio(latencies, idle):
    """p99 of ``latencies`` over the idle p99, or None without both."""
    if not latencies or not idle:
        return None
    return load.percentile(latencies, 0.99) / load.percentile(idle, 0.99)


def report(args, unpaced, paced):
    idle = sorted(unpaced['idle'] + paced['idle'])
    rows = []
    for name, latencies, took in (
            ('idle (no prune)', idle, None),
            ('unpaced prune', unpaced['prune'], unpaced['seconds']),
            ('paced prune (%s/s)' % args.rate_text, paced['prune'],
             paced['seconds'])):
        rows.append((name, str(len(latencies)), _ms_at(latencies, 0.5),
                     _ms_at(latencies, 0.99), _ms_at(latencies, 0.999),
                     _ms_at(latencies, 1.0),
                     tables.fmt(_p99_ratio(latencies, idle), '%.2fx'),
                     tables.fmt(took, '%.2f')))
    lines = [
        '%d images of %d MiB pruned (%d MiB), reads of %d KiB from a %d MiB '
        'image; windows: the prune and %.1f s after' % (
            args.images, args.image_size // MIB,
            args.images * args.image_size // MIB, CHUNK // 1024,
            SERVED_SIZE // MIB, args.after),
        tables.grid(('case', 'reads', 'p50 ms', 'p99 ms', 'p99.9 ms', 'max ms',
                    'p99 / idle p99', 'prune s'), rows),
    ]
    ratio = _p99_ratio(paced['prune'], idle)
    if ratio is not None:
        lines.append('issue 13 target, paced p99 within 2x idle p99: %s '
                     '(%.2fx)' % ('met' if ratio <= 2 else 'MISSED', ratio))
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m bench.paced',
        description='glance-api reads during a large prune, paced and '
                    'unpaced.')
    parser.add_argument('--images', type=int, default=4)
    parser.add_argument('--image-size', default='1G',
                        help='size of each evicted image (default 1G)')
    parser.add_argument('--rate', default='200M',
                        help='[prune] max_delete_rate of the paced case')
    parser.add_argument('--idle', type=float, default=5.0,
                        help='seconds of reads before each prune')
    parser.add_argument('--after', type=float, default=2.0,
                        help='seconds of reads counted after each prune')
    parser.add_argument('--workdir', default=None,
                        help='where to build the caches (default: a new '
                             'temporary directory, removed afterwards); it '
                             'must be on the disk to measure')
    parser.add_argument('--read', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.read:
        read_forever(args.read)
        return
    args.rate_text = args.rate
    args.image_size = prune_opts.Bytes()(args.image_size)
    prune_opts.Bytes()(args.rate)
    workdir = tempfile.mkdtemp(prefix='bench-paced-', dir=args.workdir)
    try:
        unpaced = one_case(os.path.join(workdir, 'unpaced'), args, '0')
        paced = one_case(os.path.join(workdir, 'paced'), args, args.rate)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(report(args, unpaced, paced))


if __name__ == '__main__':
    main()
