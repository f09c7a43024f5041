"""Fixtures of the fault suite: big caches, real daemons, a cuttable link.

Faults are inflicted from outside on the real ``cache-maint`` and
``cache-maint-manage`` processes: signals to their process group, a TCP
proxy between the service and its database server that the test cuts and
restores, and changes to the real cache directory. Every wait is a poll
with a generous deadline; nothing here measures time.
"""

import os
import shutil
import signal
import socket
import sqlite3
import threading
import time

import pytest
import sqlalchemy as sa


from tests.support import caches
from tests.support import databases
from tests.support import env
from tests.support import fs
from tests.support import glance_schema
from tests.support import plans
from tests.support import processes
from tests.support import running
from tests.support import settings

#: The four kinds of metadata store the fault tests run against.
KINDS = caches.KINDS

#: Images in a "large" cache (issue 6 asks for 20,000).
LARGE = 20000

#: Run slices, in seconds, of a process being stepped towards a fault.
SLICE = 0.002


def image_count(path):
    """How many images the base directory of a test's cache holds now.

    Counted by the length of an image id: this is called between slices of
    a frozen process, and the caches of these tests hold nothing else of
    that length.
    """
    return len([name for name in os.listdir(path) if len(name) == 36])


class Workload:
    """A cache filled with images of known sizes and a known LRU order.

    The images are written and recorded in bulk (``add_planned``), one
    whole second apart, so that the LRU order is the creation order for
    every driver.
    """

    def __init__(self, cache, count, size_of=lambda i: 1 + (i * 7) % 13):
        self.cache = cache
        self.images = plans.timeline(count, size_of,
                                     hits_of=lambda i: i % 7)
        cache.add_planned(self.images)
        self.ids = [image.image_id for image in self.images]
        self.sizes = {image.image_id: image.size for image in self.images}
        self.rows_before = cache.rows()

    @property
    def total(self):
        return sum(self.sizes.values())

    def survivors(self, max_size, kept=()):
        """What a prune to ``max_size`` leaves (plans.survivors)."""
        return plans.survivors(self.images, max_size, kept)

    def files(self):
        return self.cache.images()

    def record_count(self):
        """How many records there are; None if they cannot be read now.

        Called while the process under test is frozen, perhaps in the
        middle of a transaction: a locked sqlite database is not waited
        for, and the servers answer from committed rows.
        """
        if isinstance(self.cache, caches.SqliteCache):
            conn = sqlite3.connect(self.cache.db_path, timeout=0.05)
            try:
                return conn.execute(
                    'SELECT COUNT(*) FROM cached_images').fetchone()[0]
            except sqlite3.OperationalError:
                return None
            finally:
                conn.close()
        if isinstance(self.cache, caches.CentralCache):
            with self.cache.engine.connect() as conn:
                return conn.execute(sa.select(sa.func.count()).select_from(
                    glance_schema.cached_images)).scalar()
        return len(self.files())

    def rows(self):
        return self.cache.rows()

    def state(self):
        """What a failure message needs to explain a disagreement."""
        files, rows = self.files(), set(self.rows())
        return ('%d files, %d records; %d files without a record, %d '
                'records without a file'
                % (len(files), len(rows), len(files - rows),
                   len(rows - files)))

    def assert_exactly(self, survivors):
        """Files and records are exactly ``survivors``, records unchanged."""
        files, rows = self.files(), self.rows()
        assert files == set(rows), self.state()
        assert files == survivors, (
            '%d images left, %d expected; %d evicted that should have '
            'stayed, %d kept that should have gone'
            % (len(files), len(survivors), len(survivors - files),
               len(files - survivors)))
        assert rows == {i: self.rows_before[i] for i in survivors}
        for image_id in survivors:
            assert os.path.getsize(os.path.join(
                self.cache.path, image_id)) == self.sizes[image_id]


@pytest.fixture
def make_cache(tmp_path, tmpfs):
    """Make an empty Glance cache of a kind in KINDS.

    The directory is a tmpfs of its own where one can be mounted: writing
    20,000 small files costs this machine's disk about half a millisecond
    each, and the faults under test are those of processes, not of the
    disk. The database of a centralized_db cache is a scratch database on
    the real server, dropped afterwards.
    """
    made, urls = [], []

    def make(kind):
        path = tmpfs('cache', 512 * 1024 * 1024, required=False)
        if path is None:
            path = tmp_path / 'cache'
        url = None
        if kind in ('postgresql', 'mysql'):
            url = databases.create_database(kind)
            urls.append(url)
        made.append(caches.make(kind, path, url))
        return made[-1]

    yield make
    for cache in reversed(made):
        if isinstance(cache, caches.CentralCache):
            cache.engine.dispose()
        shutil.rmtree(cache.path, ignore_errors=True)
    for url in urls:
        databases.drop_database(url)


@pytest.fixture
def daemons(tmp_path):
    """Make Daemons for a cache; every one is stopped afterwards."""
    made = []

    def make(cache, workdir=None, connection=None, **options):
        """``connection`` replaces the cache's database URL (a Link's)."""
        workdir = workdir or tmp_path / ('daemon-%d' % len(made))
        os.makedirs(workdir, exist_ok=True)
        made.append(running.Daemon.for_cache(workdir, cache, connection,
                                             **options))
        return made[-1]

    yield make
    for daemon in made:
        if daemon.process is not None:
            daemon.stop()


def write_manage_config(path, cache, **options):
    """A config file for ``cache-maint-manage`` on ``cache``."""
    return settings.write_config(path,
                                 settings.cache_sections(cache, **options))


def _threads_stopped(pid):
    """True once every thread of ``pid`` is stopped (or the pid is gone)."""
    try:
        tasks = os.listdir('/proc/%d/task' % pid)
    except FileNotFoundError:
        return True
    for tid in tasks:
        try:
            with open('/proc/%d/task/%s/stat' % (pid, tid)) as f:
                state = f.read().rpartition(')')[2].split()[0]
        except OSError:
            continue
        if state not in ('T', 't', 'Z', 'X'):
            return False
    return True


def freeze(pgid, pids):
    """SIGSTOP a process group; return once all its threads are stopped."""
    os.killpg(pgid, signal.SIGSTOP)
    processes.wait_for(lambda: all(_threads_stopped(pid) for pid in pids),
                       'processes %s to stop' % pids, interval=0.0005)


def step_until(pgid, pids, condition, what, timeout=120):
    """Let a process group run in short slices until ``condition()`` holds.

    The group is stopped whenever ``condition`` is looked at, and is left
    stopped when it holds: the caller then inflicts its fault on a process
    frozen at that point, however fast it otherwise runs. Returns the value
    of ``condition``.
    """
    deadline = time.monotonic() + timeout
    # The group runs at the lowest priority: on a loaded machine this
    # process, woken after its slice, gets the processor back before the
    # group has run far past it.
    os.setpriority(os.PRIO_PGRP, pgid, 19)
    while True:
        freeze(pgid, pids)
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            os.killpg(pgid, signal.SIGCONT)
            pytest.fail('timed out after %s s waiting for %s'
                        % (timeout, what))
        os.killpg(pgid, signal.SIGCONT)
        time.sleep(SLICE)


def freeze_mid_prune(pgid, pids, workload, target, unrecorded=False):
    """Freeze a process in the middle of its prune of ``workload``.

    Returns how many images were left at that moment: at most halfway
    from where the prune started to ``target``, and more than ``target``
    (it has not finished). With ``unrecorded``, also a moment when some
    images still there have lost their records (records go first, then
    files: between the two), where a crash is the most harmful.
    """
    start = len(workload.ids)
    halfway = (start + target) // 2

    def halfway_done():
        left = image_count(workload.cache.path)
        if left > halfway:
            return None
        if unrecorded:
            records = workload.record_count()
            if records is None or not records < left:
                return None
        return left

    left = step_until(pgid, pids, halfway_done, 'the prune to get halfway')
    assert left > target, (
        'the prune finished (%d images left) before it could be stopped; '
        'step it in shorter slices' % left)
    return left


class Link:
    """A TCP proxy between cache-maint and a database server.

    The test can cut it (every connection closed, new ones refused: the
    server is gone as far as cache-maint can tell) and restore it, or arm
    it to cut itself the moment a client sends a given statement, before
    the statement is passed on.
    """

    def __init__(self, host, port):
        self.upstream = (host, port)
        self.port = processes.free_port()
        self.cut_event = threading.Event()
        self._guard = threading.Lock()
        self._sockets = set()
        self._listener = None
        self._trigger = None
        self.restore()

    def url(self, url):
        """``url`` of the server, rewritten to go through this link."""
        url = sa.engine.make_url(url).set(host='127.0.0.1', port=self.port)
        if url.get_backend_name() == 'postgresql':
            # Statements must be visible to cut_on(): no TLS on this hop.
            url = url.update_query_dict({'sslmode': 'disable'})
        return url.render_as_string(hide_password=False)

    def restore(self):
        """Accept connections again, on the same port."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(('127.0.0.1', self.port))
        listener.listen(16)
        with self._guard:
            self._listener = listener
            self.cut_event.clear()
        threading.Thread(target=self._accept, args=(listener,),
                         daemon=True).start()

    def cut_on(self, statement):
        """Cut the link when a client sends ``statement`` (bytes)."""
        self._trigger = statement

    def cut(self):
        """Close every connection and stop accepting new ones."""
        with self._guard:
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, set()
            self._trigger = None
            self.cut_event.set()
        if listener is not None:
            _close(listener)
        for sock in sockets:
            _close(sock)

    def close(self):
        self.cut()

    def _accept(self, listener):
        while True:
            try:
                client, _addr = listener.accept()
            except OSError:
                return      # cut: the listener was closed
            try:
                server = socket.create_connection(self.upstream, timeout=10)
                server.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._guard:
                if self._listener is not listener:
                    _close(client)
                    _close(server)
                    return
                self._sockets.update((client, server))
            threading.Thread(target=self._pump, args=(client, server, True),
                             daemon=True).start()
            threading.Thread(target=self._pump,
                             args=(server, client, False),
                             daemon=True).start()

    def _pump(self, source, sink, from_client):
        seen = b''
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b''
            trigger = self._trigger
            if from_client and trigger and data:
                # A statement may straddle two reads.
                if trigger in seen[-len(trigger):] + data:
                    self.cut()
                    return
                seen = data
            if not data:
                _close(source)
                _close(sink)
                return
            try:
                sink.sendall(data)
            except OSError:
                _close(source)
                _close(sink)
                return


def _close(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


@pytest.fixture
def links():
    """Make Links to database servers; every one is closed afterwards."""
    made = []

    def make(url):
        url = sa.engine.make_url(url)
        link = Link(url.host, url.port)
        made.append(link)
        return link

    yield make
    for link in made:
        link.close()


@pytest.fixture
def tmpfs(tmp_path):
    """Mount a tmpfs of ``size`` bytes at a new directory of the test.

    If it cannot be mounted, a test that ``required`` it fails in CI and is
    skipped elsewhere; otherwise None is returned.
    """
    mounted = []

    def mount(name, size, required=True):
        path = tmp_path / name
        path.mkdir()
        problem = fs.mount_tmpfs(path, size)
        if problem:
            if not required:
                path.rmdir()
                return None
            env.unavailable(problem)
        mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        fs.unmount(path)
