"""A live glance-api 33 keeps serving while cache-maint prunes under it.

Issue 6, item 2. glance-api here is Glance's own WSGI application
(``glance.wsgi.api:application`` of glance==33.0.0 from PyPI) served by
the real waitress server on loopback, with Glance's image cache middleware
and cache management API (sqlite driver), an images database made by
``glance-manage db sync`` and a glance_store filesystem store, all in the
test's own directory. There is no keystone: the paste pipeline below takes
the identity from the headers keystonemiddleware would have set, and the
clients send those of an admin.

A few hundred images are uploaded and downloaded through glance-api, so
that glance-api caches them and records them in its ``cache.db``; the rest
of a 20,000-image cache is filled in bulk with older images recorded the
same way. Then the real ``cache-maint`` daemon, started with glance-api's
own glance-api.conf, prunes that cache every second while client threads
download through glance-api all along: cache hits, and misses that
glance-api tees into the cache (each time after ``DELETE /v2/cache/{id}``
through glance-api). Every download must be a 200 with the right bytes,
glance-api's log must hold no error (no sqlite lock timeout in particular),
glance-api must have counted every hit, and afterwards glance-api's own
``GET /v2/cache`` must list exactly the image files in the directory:
every live image and the most recently used of the others, under the
limit.
"""

import collections
import hashlib
import importlib.metadata
import itertools
import os
import random
import signal
import sqlite3
import subprocess
import threading
import time

import pytest
import requests

from tests.faults import conftest as faults
from tests.support import caches
from tests.support import env
from tests.support import plans
from tests.support import processes
from tests.support import running
from tests.support import settings

GLANCE_VERSION = '33.0.0'

#: Images uploaded through glance-api: HITS are cached before the prune
#: and downloaded again and again; MISSES are taken out of the cache and
#: downloaded again, one at a time per miss client.
HITS, MISSES = 200, 40

#: Of the older images, how many the limit leaves in the cache.
KEEP = 1000

HIT_CLIENTS, MISS_CLIENTS = 6, 2

#: The identity keystonemiddleware would pass on for an admin.
PROJECT_ID = '6f0ab4e1f2b34bcb8cbf1f5d1b5e9a01'
ADMIN = {
    'X-Identity-Status': 'Confirmed',
    'X-Roles': 'admin,member,reader',
    'X-Project-Id': PROJECT_ID,
    'X-User-Id': 'cache-maint-test',
}

#: glance-api's WSGI pipeline with its image cache and cache management
#: API, as Glance's own "cachemanagement" flavor, with the context taken
#: from identity headers instead of an unauthenticated one (whose empty
#: roles Glance's default policies refuse).
PASTE_INI = """\
[composite:glance-api-cachemanagement]
paste.composite_factory = glance.api:root_app_factory
/: api

[composite:api]
paste.composite_factory = glance.api:pipeline_factory
cachemanagement = versionnegotiation context cache cachemanage rootapp

[composite:rootapp]
paste.composite_factory = glance.api:root_app_factory
/: apiversions
/v2: apiv2app

[app:apiversions]
paste.app_factory = glance.api.versions:create_resource

[app:apiv2app]
paste.app_factory = glance.api.v2.router:API.factory

[filter:versionnegotiation]
paste.filter_factory = \
glance.api.middleware.version_negotiation:VersionNegotiationFilter.factory

[filter:context]
paste.filter_factory = \
glance.api.middleware.context:ContextMiddleware.factory

[filter:cache]
paste.filter_factory = glance.api.middleware.cache:CacheFilter.factory

[filter:cachemanage]
paste.filter_factory = \
glance.api.middleware.cache_manage:CacheManageFilter.factory
"""

#: What glance-api logs when its cache database stayed locked: sqlite's
#: own message, Glance's retry giving up (TimeoutError), and the lines its
#: cache code logs around a failed sqlite call.
LOCK_SIGNS = ('database is locked', 'SQLite operation exceeded',
              'TimeoutError', 'Error executing SQLite call',
              "Exception encountered while tee'ing")


def _require_glance():
    """Glance 33 and its console scripts, or a failure in CI."""
    try:
        version = importlib.metadata.version('glance')
    except importlib.metadata.PackageNotFoundError:
        version = None
    if version != GLANCE_VERSION:
        message = ('a live glance-api needs glance==%s in this environment '
                   '(found %s): pip install glance==%s'
                   % (GLANCE_VERSION, version, GLANCE_VERSION))
        if env.in_ci():
            pytest.fail(message)
        pytest.skip(message)


class GlanceAPI:
    """glance-api 33 in a process of its own: Glance's app under waitress."""

    def __init__(self, workdir, cache_dir, max_size):
        self.workdir = str(workdir)
        self.cache_dir = str(cache_dir)
        self.port = processes.free_port()
        self.etc = os.path.join(self.workdir, 'etc')
        self.config_path = os.path.join(self.etc, 'glance-api.conf')
        self.log_path = os.path.join(self.workdir, 'glance-api.log')
        self.stderr_path = os.path.join(self.workdir, 'stderr.txt')
        self.process = None
        self.log_offset = 0
        for name in ('etc', 'store', 'staging'):
            os.makedirs(os.path.join(self.workdir, name))
        with open(os.path.join(self.etc, 'glance-api-paste.ini'), 'w') as f:
            f.write(PASTE_INI)
        settings.write_config(self.config_path, {
            'DEFAULT': {
                'image_cache_dir': self.cache_dir,
                'image_cache_driver': 'sqlite',
                'image_cache_max_size': max_size,
                'image_cache_stall_time': 86400,
                'enabled_import_methods': '[]',
                'node_staging_uri': 'file://%s' % os.path.join(
                    self.workdir, 'staging'),
                'log_file': self.log_path,
                'debug': 'false',
            },
            'paste_deploy': {'flavor': 'cachemanagement'},
            'database': {'connection': 'sqlite:///%s' % os.path.join(
                self.workdir, 'glance.sqlite')},
            'glance_store': {
                'stores': 'file',
                'default_store': 'file',
                'filesystem_store_datadir': os.path.join(self.workdir,
                                                         'store'),
            },
        })

    def sync_db(self):
        """Make the images database with Glance's own migrations."""
        result = processes.run_script(
            'glance-manage', ['--config-file', self.config_path, 'db',
                              'sync'], timeout=120)
        if result.returncode != 0:
            pytest.fail('glance-manage db sync failed (status %d)\n%s\n%s'
                        % (result.returncode, result.stdout[-3000:],
                           result.stderr[-3000:]))

    def start(self):
        """Serve Glance's WSGI application; wait until it answers."""
        env = dict(os.environ, OS_GLANCE_CONFIG_DIR=self.etc)
        with open(self.stderr_path, 'ab') as err:
            self.process = subprocess.Popen(
                [processes.console_script('waitress-serve'),
                 '--listen=127.0.0.1:%d' % self.port,
                 '--threads=16', 'glance.wsgi.api:application'],
                cwd=self.workdir, env=env, stdin=subprocess.DEVNULL,
                stdout=err, stderr=err, start_new_session=True)
        processes.wait_for(self._answers, 'glance-api to answer GET /versions',
                           timeout=120, interval=0.2,
                           diagnostics=self.diagnostics)
        # Start-up logs a few errors of its own (glance_store plugins that
        # cannot load here); the log is judged from this point on.
        self.log_offset = os.path.getsize(self.log_path)
        return self

    def _answers(self):
        return processes.answers(self.process, self.url('/versions'),
                                 'glance-api', self.diagnostics)

    def url(self, path):
        return 'http://127.0.0.1:%d%s' % (self.port, path)

    def request(self, method, path, session=requests, **kwargs):
        """One request as an admin; never raises for an HTTP status."""
        headers = dict(ADMIN, **kwargs.pop('headers', {}))
        return session.request(method, self.url(path), headers=headers,
                               timeout=processes.DEADLINE, **kwargs)

    def create_image(self, data, session=requests):
        """POST /v2/images, PUT its data; return the image id."""
        response = self.request('POST', '/v2/images', session, json={
            'name': 'live-%s' % hashlib.md5(data).hexdigest()[:8],
            'disk_format': 'raw', 'container_format': 'bare'})
        assert response.status_code == 201, response.text
        image_id = response.json()['id']
        response = self.request(
            'PUT', '/v2/images/%s/file' % image_id, session, data=data,
            headers={'Content-Type': 'application/octet-stream'})
        assert response.status_code == 204, response.text
        return image_id

    def listing(self):
        """glance-api's own GET /v2/cache."""
        response = self.request('GET', '/v2/cache')
        assert response.status_code == 200, response.text
        return response.json()

    def new_log(self):
        """What glance-api logged since it was ready."""
        with open(self.log_path, errors='replace') as f:
            f.seek(self.log_offset)
            return f.read()

    def diagnostics(self):
        return ('--- glance-api stderr ---\n%s\n--- glance-api log (tail) '
                '---\n%s' % (processes.read_tail(self.stderr_path),
                             processes.read_tail(self.log_path)))

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(processes.DEADLINE)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(processes.DEADLINE)


@pytest.fixture
def beside_glance():
    """Make cache-maint daemons that read glance-api.conf first.

    As in production; every one is stopped afterwards.
    """
    made = []

    def make(workdir, cache_dir, glance_config, **options):
        os.makedirs(workdir)
        made.append(running.Daemon(workdir, cache_dir,
                                   config_files=[glance_config], **options))
        return made[-1]

    yield make
    for daemon in made:
        daemon.stop()


@pytest.fixture
def glance_api(tmp_path, tmpfs):
    """Make a GlanceAPI on a cache dir of its own; stop it afterwards."""
    _require_glance()
    made = []

    def make(max_size):
        # A tmpfs where one can be mounted: 20,000 files are written and
        # most deleted, and what is under test is two processes, not a
        # disk.
        cache_dir = tmpfs('cache', 256 * 1024 * 1024, required=False)
        if cache_dir is None:
            cache_dir = tmp_path / 'cache'
            cache_dir.mkdir()
        glance = GlanceAPI(tmp_path / 'glance', cache_dir, max_size)
        made.append(glance)
        return glance

    yield make
    for glance in made:
        glance.stop()


def _recorded(db_path, image_id):
    """True once glance-api has recorded ``image_id`` in its cache.db."""
    conn = sqlite3.connect('file:%s?mode=ro' % db_path, uri=True, timeout=5)
    try:
        return conn.execute('SELECT 1 FROM cached_images WHERE image_id = ?',
                            (image_id,)).fetchone() is not None
    finally:
        conn.close()


def _record_old_images(db_path, images):
    """Record ``images`` in glance-api's cache.db as it would have."""
    conn = sqlite3.connect(db_path, isolation_level=None, timeout=5)
    try:
        conn.execute('BEGIN')
        conn.executemany(
            'INSERT INTO cached_images (image_id, last_accessed, '
            'last_modified, size, hits) VALUES (?, ?, ?, ?, ?)',
            [(i.image_id, i.last_accessed, i.last_modified, i.size, i.hits)
             for i in images])
        conn.execute('COMMIT')
    finally:
        conn.close()


def _image_files(path):
    """{id: size} of the image files in the cache's base directory."""
    return {entry.name: entry.stat(follow_symlinks=False).st_size
            for entry in os.scandir(path)
            if entry.is_file(follow_symlinks=False)
            and len(entry.name) == 36}


class Load:
    """Client threads downloading through glance-api until stopped."""

    def __init__(self, glance, data, hit_ids, miss_ids):
        self.glance = glance
        self.digests = {i: hashlib.md5(d).hexdigest()
                        for i, d in data.items()}
        self.hit_ids = list(hit_ids)
        self.miss_ids = list(miss_ids)
        self.db_path = os.path.join(glance.cache_dir, 'cache.db')
        self.stop_event = threading.Event()
        self.guard = threading.Lock()
        self.failures = []
        self.hits = collections.Counter()
        self.spans = collections.defaultdict(list)
        self.threads = []

    def start(self):
        for n in range(HIT_CLIENTS):
            self._spawn(self._hit_client, random.Random(n))
        for n in range(MISS_CLIENTS):
            self._spawn(self._miss_client, self.miss_ids[n::MISS_CLIENTS])
        return self

    def _spawn(self, target, arg):
        thread = threading.Thread(target=target, args=(arg,), daemon=True)
        thread.start()
        self.threads.append(thread)

    def stop(self):
        self.stop_event.set()
        for thread in self.threads:
            thread.join(processes.DEADLINE * 2)
        assert not any(t.is_alive() for t in self.threads), \
            'a client thread is stuck'

    def _fail(self, what):
        with self.guard:
            self.failures.append(what)

    def download(self, session, image_id, kind):
        """GET the image's data; True if it is a 200 with the right bytes."""
        started = time.time()
        try:
            response = self.glance.request(
                'GET', '/v2/images/%s/file' % image_id, session)
            body = response.content
        except requests.RequestException as e:
            self._fail('%s of %s: %r' % (kind, image_id, e))
            return False
        finished = time.time()
        if response.status_code != 200:
            self._fail('%s of %s: %d %s' % (kind, image_id,
                                            response.status_code,
                                            response.text[:200]))
            return False
        if hashlib.md5(body).hexdigest() != self.digests[image_id]:
            self._fail('%s of %s: %d bytes, not the image\'s data'
                       % (kind, image_id, len(body)))
            return False
        with self.guard:
            self.spans[kind].append((started, finished))
        return True

    def _hit_client(self, rnd):
        with requests.Session() as session:
            while not self.stop_event.is_set():
                image_id = rnd.choice(self.hit_ids)
                if self.download(session, image_id, 'hit'):
                    with self.guard:
                        self.hits[image_id] += 1

    def _miss_client(self, image_ids):
        """Uncache an image through glance-api, download it again."""
        with requests.Session() as session:
            for image_id in itertools.cycle(image_ids):
                if self.stop_event.is_set():
                    return
                try:
                    response = self.glance.request(
                        'DELETE', '/v2/cache/%s' % image_id, session)
                except requests.RequestException as e:
                    self._fail('DELETE /v2/cache/%s: %r' % (image_id, e))
                    return
                if response.status_code != 204:
                    self._fail('DELETE /v2/cache/%s: %d %s'
                               % (image_id, response.status_code,
                                  response.text[:200]))
                    return
                if not self.download(session, image_id, 'miss'):
                    return
                # glance-api renames the file into place and records it
                # once the body is sent: wait, or the next DELETE races
                # with glance-api's own commit.
                deadline = time.monotonic() + processes.DEADLINE
                while not _recorded(self.db_path, image_id):
                    if time.monotonic() > deadline:
                        self._fail('glance-api did not record %s in its '
                                   'cache after a miss' % image_id)
                        return
                    time.sleep(0.005)


def _overlapping(spans, start, end):
    return sum(1 for s, e in spans if s < end and e > start)


def _glance_trouble(glance):
    """Lines of glance-api's log (since it was ready) that tell of trouble."""
    return [line for line in glance.new_log().splitlines()
            if any(sign in line for sign in LOCK_SIGNS)
            or ' ERROR ' in line or ' CRITICAL ' in line
            or 'Traceback' in line]


def _report(glance, daemon, load):
    """What a failure message needs: who failed, and what they logged."""
    failed_runs = [r for r in daemon.runs('prune') + daemon.runs('clean')
                   if r['outcome'] != 'succeeded']
    daemon_trouble = [line for line in daemon.log().splitlines()
                      if ' ERROR ' in line or ' WARNING ' in line]
    return ('client failures: %r\nfailed cache-maint runs: %r\n'
            'cache-maint errors and warnings:\n%s\nglance-api trouble:\n%s'
            % (load.failures[:10], failed_runs[:10],
               '\n'.join(daemon_trouble[:20]),
               '\n'.join(_glance_trouble(glance)[:40])))


def _fill(glance, rnd, sizes):
    """Upload images of ``sizes`` through glance-api; {id: data}."""
    data = {}
    with requests.Session() as session:
        for size in sizes:
            blob = rnd.randbytes(size)
            data[glance.create_image(blob, session)] = blob
    return data


def _first_downloads(glance, load, image_ids):
    """Download each image once: glance-api misses, caches and records it."""
    with requests.Session() as session:
        for image_id in image_ids:
            assert load.download(session, image_id, 'first'), load.failures
    db_path = os.path.join(glance.cache_dir, 'cache.db')
    processes.wait_for(lambda: all(_recorded(db_path, i) for i in image_ids),
                       'glance-api to record its %d cached images'
                       % len(image_ids), timeout=60)
    return db_path


def test_glance_api_serves_while_cache_maint_prunes(glance_api, beside_glance,
                                                    tmp_path):
    """Zero failed downloads, zero lock errors, and Glance agrees after."""
    rnd = random.Random(6)
    live_sizes = [rnd.randint(1024, 16 * 1024) for _ in range(HITS + MISSES)]
    old = plans.plan(faults.LARGE - HITS - MISSES, seed=6, now=time.time())
    keep_size, keep_ids = plans.limit_keeping(old, KEEP)
    max_size = sum(live_sizes) + keep_size
    evicted = len(old) - KEEP

    glance = glance_api(max_size)
    glance.sync_db()
    glance.start()
    data = _fill(glance, rnd, live_sizes)
    live_ids = list(data)
    hit_ids, miss_ids = live_ids[:HITS], live_ids[HITS:]
    load = Load(glance, data, hit_ids, miss_ids)
    db_path = _first_downloads(glance, load, live_ids)
    # The rest of the 20,000, all used longer ago than the live images.
    caches.write_files(glance.cache_dir, old)
    _record_old_images(db_path, old)
    assert len(_image_files(glance.cache_dir)) == faults.LARGE

    load.start()
    daemon = beside_glance(
        tmp_path / 'cache-maint', glance.cache_dir, glance.config_path,
        image_cache_max_size=max_size, image_cache_stall_time=86400,
        cache_prune_interval=1, cache_clean_interval=1, debug='false')

    def report():
        return _report(glance, daemon, load)

    def big_prune():
        runs = daemon.runs('prune') + daemon.runs('clean')
        if any(r['outcome'] != 'succeeded' for r in runs):
            pytest.fail('a run of cache-maint failed\n' + report())
        runs = [r for r in runs if r['task'] == 'prune'
                and r['result']['total_files_pruned'] > evicted // 2]
        return runs[0] if runs else None

    try:
        processes.wait_for(lambda: load.spans['miss'] and load.spans['hit'],
                           'the clients to download', timeout=60,
                           diagnostics=report)
        # The first prune comes as soon as the service has started.
        daemon.start()
        prune_run = processes.wait_for(
            big_prune, 'cache-maint to prune the 20,000-image cache',
            timeout=120, interval=0.5, diagnostics=report)
        # Downloads go on for a few more prunes and cleans.
        processes.wait_for(
            lambda: len(daemon.runs('prune')) >= 4
            and len(daemon.runs('clean')) >= 4,
            'more runs of cache-maint', timeout=60, diagnostics=report)
    finally:
        load.stop()
    # The last misses may have put the cache over: one more prune, begun
    # once the load had stopped, must bring it under.
    stopped_at = time.time()
    processes.wait_for(
        lambda: any(r['started_at'] > stopped_at
                    for r in daemon.runs('prune')),
        'a prune after the load', diagnostics=report)
    runs = daemon.runs('prune') + daemon.runs('clean')
    failure_report = report()
    daemon.stop()
    assert daemon.process.returncode == 0, daemon.diagnostics()

    # Zero failed downloads, and they went on all through the big prune.
    assert load.failures == [], failure_report
    start, end = prune_run['started_at'], prune_run['finished_at']
    for kind in ('hit', 'miss'):
        assert _overlapping(load.spans[kind], start, end) > 0, (
            'no cache %s was served during the prune %s'
            % (kind, prune_run))

    # Nothing in glance-api's log or on its server's stderr went wrong.
    assert _glance_trouble(glance) == [], failure_report
    stderr = processes.read_tail(glance.stderr_path, limit=10 ** 6)
    assert 'Traceback' not in stderr, stderr[-6000:]

    # Every run of cache-maint succeeded, and the prunes evicted exactly
    # the older images that did not fit.
    assert [r for r in runs if r['outcome'] != 'succeeded'] == [], \
        failure_report
    assert sum(r['result']['total_files_pruned'] for r in runs
               if r['task'] == 'prune') == evicted

    # glance-api counted every hit (each one updates its cache.db after
    # the whole image was read; a re-cached miss starts again at 0), and
    # its GET /v2/cache agrees exactly with the files: every live image,
    # then the most recently used old ones, under the limit.
    def uncounted():
        counted = {i['image_id']: i['hits']
                   for i in glance.listing()['cached_images']}
        return [(i, counted.get(i), load.hits[i]) for i in live_ids
                if counted.get(i) != load.hits[i]]

    processes.wait_for(
        lambda: not uncounted(), 'glance-api to count all %d hits'
        % sum(load.hits.values()), diagnostics=lambda: (
            '(image, hits counted, hits served): %r' % uncounted()[:20]))
    state = glance.listing()
    files = _image_files(glance.cache_dir)
    listed = {i['image_id']: i['size'] for i in state['cached_images']}
    assert listed == files, (
        '%d listed by glance-api, %d files; %d files not listed, %d listed '
        'without a file' % (len(listed), len(files),
                            len(set(files) - set(listed)),
                            len(set(listed) - set(files))))
    assert set(files) == set(live_ids) | keep_ids
    assert {i: files[i] for i in live_ids} == {
        i: len(blob) for i, blob in data.items()}
    assert state['queued_images'] == []
    assert sum(files.values()) <= max_size
