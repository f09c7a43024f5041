"""How each side is timed, and the floor both are compared to."""

import collections
from concurrent import futures
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time

Child = collections.namedtuple('Child', 'stdout stderr status peak_rss_mib')

#: Seconds to let the disk go quiet before each timed run, once every
#: write is flushed: the run before (a Glance prune makes tens of thousands
#: of writes and discards) must not slow the next one down, whichever side
#: it is.
SETTLE_SECONDS = 1.0


def settle():
    """Flush every write and give the disk a moment before a timed run."""
    os.sync()
    time.sleep(SETTLE_SECONDS)


def filesystem(path):
    """What the caches are on: type, mount options, and (ext4) journal.

    An unlink's cost, which bounds every prune, depends on it: mounted
    with ``discard``, each unlink waits for the disk to discard the file's
    blocks.
    """
    path = os.path.realpath(path)
    best = None
    with open('/proc/self/mountinfo') as f:
        for line in f:
            fields = line.split()
            mount_point = fields[4]
            fs_type, source = fields[-3], fields[-2]
            # The mount's own options, then the filesystem's (discard...).
            options = ','.join(dict.fromkeys(
                (fields[5] + ',' + fields[-1]).split(',')))
            inside = path == mount_point or path.startswith(
                mount_point.rstrip('/') + '/')
            if inside and (best is None or len(mount_point) > len(best[0])):
                best = (mount_point, fs_type, source, options)
    if best is None:
        return 'unknown'
    mount_point, fs_type, source, options = best
    described = '%s on %s (%s)' % (fs_type, mount_point, options)
    if fs_type == 'ext4':
        journal = os.path.exists('/proc/fs/jbd2/%s-8'
                                 % os.path.basename(source))
        described += ', with a journal' if journal else ', no journal'
    return described


def run_child(argv, timeout=3600):
    """Run a process to its end; its output and its own peak RSS.

    The peak RSS is the high-water mark (VmHWM) of the process's memory
    after exec, polled until it exits. ``ru_maxrss`` would not do: Linux
    carries the RSS of the forking parent (this benchmark) over into the
    child's, so every child would seem at least as large as the parent.
    """
    with open(os.devnull, 'rb') as stdin:
        proc = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    out, err = [], []
    readers = [threading.Thread(target=lambda s=stream, b=buf: b.append(
        s.read())) for stream, buf in ((proc.stdout, out),
                                       (proc.stderr, err))]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + timeout
    peak_kib = 0
    while True:
        peak_kib = max(peak_kib, _high_water_kib(proc.pid))
        pid, status = os.waitpid(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError('%s ran longer than %d s' % (argv, timeout))
        time.sleep(0.005)
    proc.returncode = os.waitstatus_to_exitcode(status)
    for reader in readers:
        reader.join()
    return Child(out[0], err[0], proc.returncode, peak_kib / 1024)


def _high_water_kib(pid):
    """VmHWM of a live process, in KiB; 0 once it has exited."""
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def checked(child, what):
    if child.status != 0:
        raise RuntimeError('%s failed with status %d:\n%s\n%s' % (
            what, child.status, child.stdout[-3000:], child.stderr[-3000:]))
    return child


def glance(operation, copy, **options):
    """Glance 33's ``operation`` on ``copy``: (seconds list, result, rss)."""
    argv = [sys.executable, '-m', 'bench.glance_side', operation,
            '--driver', copy.driver, '--cache-dir', copy.path]
    if copy.driver == 'centralized_db':
        argv += ['--connection', copy.url]
    for name, value in options.items():
        argv += ['--' + name.replace('_', '-'), str(value)]
    settle()
    child = checked(run_child(argv), 'Glance %s' % operation)
    report = json.loads(child.stdout.strip().splitlines()[-1])
    return report['seconds'], report['result'], child.peak_rss_mib


def cache_maint(operation, config_file):
    """``cache-maint-manage --config-file F operation --show-run``.

    Returns (seconds of the run itself, its result, peak RSS). The run's
    duration is the one its own record gives: from the moment it held its
    locks to its end, without the process start-up (imports,
    configuration, driver).
    """
    script = os.path.join(os.path.dirname(sys.executable),
                          'cache-maint-manage')
    settle()
    child = checked(run_child([script, '--config-file', config_file,
                               operation, '--show-run']),
                    'cache-maint-manage %s' % operation)
    run = json.loads(child.stdout)
    return run['duration'], run['result'], child.peak_rss_mib


def floor(directory, victims):
    """Seconds to scan ``directory`` (stat included) and unlink victims.

    The least any prune can do: learn what is there and its size, then
    remove each victim, one after another, through the directory's fd.
    """
    settle()
    started = time.perf_counter()
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with os.scandir(dir_fd) as entries:
            for entry in entries:
                entry.stat(follow_symlinks=False)
        for name in victims:
            os.unlink(name, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)
    return time.perf_counter() - started


def unlinks_alone(directory, victims, threads):
    """Seconds to unlink ``victims`` from ``threads`` threads, nothing else.

    No scan, no metadata, no order to work out: the least time in which
    any prune could free that space on this disk with as many unlinks in
    flight as cache-maint keeps. Glance's time over this one is the most
    any prune could gain over Glance here.
    """
    names = list(victims)
    shares = [names[i::threads] for i in range(threads)]
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with futures.ThreadPoolExecutor(threads) as pool:
            settle()
            started = time.perf_counter()
            list(pool.map(lambda share: [os.unlink(name, dir_fd=dir_fd)
                                         for name in share], shares))
            return time.perf_counter() - started
    finally:
        os.close(dir_fd)


class HitWriter(threading.Thread):
    """A glance-api reading cached images beside a prune, on sqlite.

    Every cache hit makes glance-api update the image's hits and
    last_accessed in cache.db. This thread does the same, a few hundred
    times per second, one write transaction per hit, and records for each
    how long it waited for the database's write lock (``BEGIN IMMEDIATE``:
    as long as another connection's write transaction still held it) and
    how long its own commit took (the fsyncs, slow whenever the disk is
    busy, whoever makes it busy).
    """

    def __init__(self, db_path, image_ids, pause=0.002):
        super().__init__(daemon=True)
        self.db_path = db_path
        self.image_ids = list(image_ids)
        self.pause = pause
        self.lock_waits = []
        self.commits = []
        self.errors = []
        self._stop_event = threading.Event()

    def run(self):
        conn = sqlite3.connect(self.db_path, timeout=30,
                               isolation_level=None)
        try:
            i = 0
            while not self._stop_event.is_set():
                image_id = self.image_ids[i % len(self.image_ids)]
                try:
                    started = time.perf_counter()
                    conn.execute('BEGIN IMMEDIATE')
                    locked = time.perf_counter()
                    conn.execute('UPDATE cached_images SET hits = hits + 1, '
                                 'last_accessed = ? WHERE image_id = ?',
                                 (time.time(), image_id))
                    conn.execute('COMMIT')
                    self.lock_waits.append(locked - started)
                    self.commits.append(time.perf_counter() - locked)
                except sqlite3.Error as e:
                    self.errors.append(str(e))
                    if conn.in_transaction:
                        conn.execute('ROLLBACK')
                i += 1
                time.sleep(self.pause)
        finally:
            conn.close()

    def stop(self):
        self._stop_event.set()
        self.join()
