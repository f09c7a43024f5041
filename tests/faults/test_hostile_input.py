"""Hostile input never reaches outside the cache (issue 6, item 5).

Two kinds of hostility, both against the real ``cache-maint`` and the real
``cache-maint-manage``:

* image ids that are paths, encodings of paths, over-long, unicode, upper
  case or NUL-bearing, sent as raw HTTP over a socket. The route table
  decides the status: a request path whose id segment is one segment is
  routed to the handler, which refuses anything but a lower-case UUID with
  a 400; a path with more (or fewer) segments than any route is a 404.
  Either way the answer is a JSON error that names no host path, and
  nothing in or out of the cache changes.
* links, FIFOs and directories planted in the cache under image names,
  around canary files outside it. Only a regular file named by a
  well-formed id is an image: a symlink is removed (where clean or clear
  empty a directory) but never followed, a FIFO is never opened, a
  directory is never entered. A hard link is a regular file: it is an
  image like any other, and removing it removes that one name only, so
  the canary it shares an inode with keeps its name, content and mode.
"""

import collections
import os
import stat
import time

import pytest

from tests.faults import hostile
from tests.support import caches
from tests.support import processes
from tests.support import rawhttp
from tests.support import running

KIB = caches.KIB
HOUR = 3600
IMAGE_ID = 'a5c3e1f0-7b2d-4c89-9e6f-0123456789ab'


class Site:
    """A cache with one cached and one queued image, and canaries outside."""

    def __init__(self, root):
        self.root = str(root)
        self.cache = caches.SqliteCache(os.path.join(self.root, 'cache'))
        self.outside = os.path.join(self.root, 'outside')
        os.mkdir(self.outside)
        self.canary = os.path.join(self.outside, 'canary')
        with open(self.canary, 'wb') as f:
            f.write(b'precious, outside the cache\n')
        os.chmod(self.canary, 0o640)
        # Fixed, with letters: its upper- and mixed-case twins differ.
        self.image_id = self.cache.add_image(size=2 * KIB,
                                             image_id=IMAGE_ID)
        self.queued_id = self.cache.queue()
        # A regular file named like an image, but in upper case: no image.
        self.upper_file = self.image_id.upper()
        with open(os.path.join(self.cache.path, self.upper_file), 'wb') as f:
            f.write(b'not an image')

    def state(self):
        return hostile.snapshot(self.cache), hostile.tree(
            self.outside, '/etc/passwd')


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    site = Site(tmp_path_factory.mktemp('hostile-ids'))
    with running.daemon(site.root, site.cache.path) as daemon:
        site.daemon = daemon
        yield site


def _q(text):
    """Percent-encode every byte of ``text``'s UTF-8, slashes too."""
    return ''.join('%%%02X' % b for b in text.encode()).encode()


# Each case: (name, suffix(site) -> the raw bytes after the route prefix,
# status). 400: one path segment that is no lower-case UUID, or a path with
# an empty, "." or ".." segment once decoded, which the server refuses
# before the application sees it. 404: the path has a segment too many or
# too few for any route.
HOSTILE = [
    ('dot', lambda s: b'.', 400),
    ('dotdot', lambda s: b'..', 400),
    ('encoded-dotdot', lambda s: b'%2e%2e', 400),
    ('mixed-dotdot', lambda s: b'.%2E', 400),
    ('encoded-traversal-to-canary',
     lambda s: b'..%2F..%2Foutside%2Fcanary', 400),
    ('encoded-etc-passwd',
     lambda s: b'..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd', 400),
    ('encoded-absolute-canary', lambda s: _q(s.canary), 400),
    ('double-encoded-traversal',
     lambda s: b'%252e%252e%252f%252e%252e%252foutside%252fcanary', 400),
    ('triple-encoded-dotdot', lambda s: b'%25252e%25252e', 400),
    ('encoded-backslash-traversal',
     lambda s: b'..%5c..%5coutside%5ccanary', 400),
    ('raw-backslash-traversal', lambda s: b'..\\..\\outside\\canary', 400),
    ('id-then-encoded-traversal',
     lambda s: s.image_id.encode() + b'%2F..%2F..%2Foutside%2Fcanary', 400),
    ('id-with-params', lambda s: s.image_id.encode() + b';..', 400),
    ('encoded-nul', lambda s: b'%00', 400),
    ('id-encoded-nul', lambda s: s.image_id.encode() + b'%00', 400),
    ('id-nul-traversal',
     lambda s: s.image_id.encode() + b'%00%2F..%2Foutside%2Fcanary', 400),
    ('id-raw-nul', lambda s: s.image_id.encode() + b'\x00', 400),
    ('raw-nul-traversal', lambda s: b'..\x00%2Fcanary', 400),
    ('id-newline', lambda s: s.image_id.encode() + b'%0A', 400),
    ('id-trailing-space', lambda s: s.image_id.encode() + b'%20', 400),
    ('id-leading-space', lambda s: b'%20' + s.image_id.encode(), 400),
    ('upper-case-id', lambda s: s.upper_file.encode(), 400),
    ('mixed-case-id',
     lambda s: s.image_id[:8].upper().encode() + s.image_id[8:].encode(),
     400),
    ('id-without-dashes', lambda s: s.image_id.replace('-', '').encode(),
     400),
    ('braced-id', lambda s: b'%7B' + s.image_id.encode() + b'%7D', 400),
    ('urn-id', lambda s: b'urn:uuid:' + s.image_id.encode(), 400),
    ('id-truncated', lambda s: s.image_id[:-1].encode(), 400),
    ('id-one-too-long', lambda s: s.image_id.encode() + b'0', 400),
    ('long-300', lambda s: b'a' * 300, 400),
    ('long-ids-repeated', lambda s: s.image_id.encode() * 100, 400),
    # Past [api] max_request_line (8 KiB): the server refuses them at once.
    ('long-16k', lambda s: b'0' * 16384, 414),
    ('long-encoded', lambda s: b'%41' * 4000, 414),
    ('utf8-e-acute', lambda s: _q('\u00e9'), 400),
    ('cyrillic-lookalike', lambda s: _q('\u0430' + s.image_id[1:]), 400),
    ('fullwidth-digits',
     lambda s: _q(''.join(chr(ord(c) + 0xFEE0) if c.isdigit() else c
                          for c in s.image_id)), 400),
    ('fullwidth-traversal', lambda s: _q('\uff0e\uff0e\uff0f'), 400),
    ('rtl-override', lambda s: _q('\u202e' + s.image_id), 400),
    ('overlong-utf8-dotdot-slash', lambda s: b'%C0%AE%C0%AE%C0%AF', 400),
    ('not-utf8', lambda s: b'%FF%FE', 400),
    ('raw-traversal', lambda s: b'../../outside/canary', 400),
    ('raw-traversal-etc-passwd', lambda s: b'../../../../../../etc/passwd',
     400),
    ('id-then-raw-dotdot', lambda s: s.image_id.encode() + b'/..', 400),
    ('id-trailing-slash', lambda s: s.image_id.encode() + b'/', 404),
    ('empty-id', lambda s: b'', 404),
    ('double-slash-id', lambda s: b'/' + s.image_id.encode(), 400),
    ('dot-segment-id', lambda s: b'./' + s.image_id.encode(), 400),
]

ROUTES = [
    ('PUT', b'/v2/cache/'),
    ('DELETE', b'/v2/cache/'),
    ('GET', b'/v2/cache/nodes/'),
    ('GET', b'/v2/images/'),
]


@pytest.mark.parametrize('name, suffix, status', HOSTILE,
                         ids=[case[0] for case in HOSTILE])
@pytest.mark.parametrize('method, prefix', ROUTES,
                         ids=['%s %s{id}' % (m, p.decode())
                              for m, p in ROUTES])
def test_hostile_image_id(site, method, prefix, name, suffix, status):
    """A hostile id is a JSON 400 (or a 404 path) and changes nothing."""
    before = site.state()

    reply = rawhttp.raw_request(site.daemon.port, method,
                                prefix + suffix(site))

    hostile.assert_clean_error(reply, status, site.root, '/etc/passwd',
                               'outside/canary')
    assert site.state() == before


@pytest.mark.parametrize('target', [
    pytest.param('/v2/cache/\u00e9t\u00e9'.encode(), id='raw-utf8'),
    pytest.param(b'/v2/cache/\xff\xfe', id='raw-not-utf8'),
    pytest.param(b'/v2/cache/x#/../../outside/canary', id='fragment'),
    pytest.param(b'//outside/canary', id='network-path'),
    pytest.param(b'http://127.0.0.1/v2/cache/..%2Foutside', id='absolute'),
    pytest.param(b'../../outside/canary', id='relative'),
    pytest.param(b'*', id='asterisk'),
])
@pytest.mark.parametrize('method', ['PUT', 'DELETE'])
def test_the_http_server_refuses_what_is_not_http(site, method, target):
    """A request-target that is no origin-form path is a JSON 400.

    The HTTP server refuses it (or a path with an empty or dot segment)
    before the application sees it; what is left is an id the API refuses.
    The answer names nothing of the host, nothing changes, and the service
    goes on answering.
    """
    before = site.state()

    reply = rawhttp.raw_request(site.daemon.port, method, target)

    hostile.assert_clean_error(reply, 400, site.root, '/etc/passwd')
    assert site.state() == before
    assert rawhttp.answers(site.daemon.port)


@pytest.mark.parametrize('value', [
    b'../../outside/canary', b'all', b'cache\x00', b'cache,queue',
    b'queue; rm -rf /', b'\xff\xfe', 'caché'.encode(),
    b'cache\xa0', b'\x85queue', b'x' * 8000])
def test_hostile_clear_target_changes_nothing(site, value):
    """DELETE /v2/cache with a bogus target is a 400, not a guess."""
    before = site.state()

    reply = rawhttp.raw_request(
        site.daemon.port, 'DELETE', b'/v2/cache',
        headers=[(b'x-image-cache-clear-target', value)])

    hostile.assert_clean_error(reply, 400, site.root)
    assert site.state() == before


def test_the_cached_image_survived_every_hostile_request(site):
    """What the hostile ids aimed around is still there, and listed."""
    reply = rawhttp.raw_request(site.daemon.port, 'GET', b'/v2/cache')
    assert reply.status == 200
    listing = reply.json()
    assert [r['image_id'] for r in listing['cached_images']] == [
        site.image_id]
    assert listing['queued_images'] == [site.queued_id]
    assert 'Traceback' not in site.daemon.log()


# Planted entries: links, FIFOs and directories named like images.

class Planted:
    """Every kind of hostile entry, planted in each part of the cache.

    Each kind has one image id, used for its entry in the base dir,
    invalid/, incomplete/ and queue/ alike. What they point at lives in
    ``outside``: canary files and a canary directory, an hour old.
    """

    KINDS = ('symlink_file', 'symlink_dir', 'dangling', 'fifo', 'dir',
             'hardlink')
    PLACES = ('', 'invalid', 'incomplete', 'queue')

    def __init__(self, root, cache):
        self.root = str(root)
        self.cache = cache
        self.outside = os.path.join(self.root, 'outside')
        os.mkdir(self.outside)
        self.canary = self._canary('canary', b'precious\n')
        self.canary_dir = os.path.join(self.outside, 'canary-dir')
        os.mkdir(self.canary_dir)
        self._canary(os.path.join('canary-dir', 'inner'), b'inner\n')
        self.dangling_target = os.path.join(self.outside,
                                            'created-if-followed')
        self.ids = {kind: caches.new_id() for kind in self.KINDS}
        # One hard-link canary per place, so each can be told apart.
        self.hard_canaries = {}
        for place in self.PLACES:
            self._plant_all(place)
        # Links that exist in queue/ only: queueing them must not follow.
        self.queue_only = {kind: caches.new_id() for kind in (
            'symlink_file', 'symlink_dir', 'dangling')}
        for kind, image_id in self.queue_only.items():
            self._plant(kind, 'queue', image_id)
        self._age(self.outside)
        self._age(cache.path)

    def _canary(self, name, content, mode=0o640):
        path = os.path.join(self.outside, name)
        with open(path, 'wb') as f:
            f.write(content)
        os.chmod(path, mode)
        return path

    def _plant_all(self, place):
        for kind in self.KINDS:
            self._plant(kind, place, self.ids[kind])

    def _plant(self, kind, place, image_id):
        path = os.path.join(self.cache.path, place, image_id)
        if kind == 'symlink_file':
            os.symlink(self.canary, path)
        elif kind == 'symlink_dir':
            os.symlink(self.canary_dir, path)
        elif kind == 'dangling':
            os.symlink(self.dangling_target, path)
        elif kind == 'fifo':
            os.mkfifo(path)
        elif kind == 'dir':
            os.mkdir(path)
            with open(os.path.join(path, caches.new_id()), 'wb') as f:
                f.write(b'x' * KIB)
        elif kind == 'hardlink':
            canary = self._canary('hard-%s' % (place or 'base'),
                                  b'linked from the cache\n', 0o604)
            os.link(canary, path)
            self.hard_canaries[place] = canary

    @staticmethod
    def _age(top):
        """Make everything an hour old: stalled, and past any grace."""
        past = time.time() - HOUR
        for dirpath, dirnames, filenames in os.walk(top):
            for name in dirnames + filenames:
                os.utime(os.path.join(dirpath, name), (past, past),
                         follow_symlinks=False)

    def link_only_ids(self):
        """Ids that name no regular file anywhere in the cache."""
        return [self.ids[kind] for kind in self.KINDS if kind != 'hardlink']

    def outside_state(self):
        return hostile.tree(self.outside)

    def listing(self, place):
        return set(os.listdir(os.path.join(self.cache.path, place)))


def _kinds_left(planted, place):
    """{kind: True if its entry is still in ``place``}."""
    return {kind: os.path.lexists(os.path.join(planted.cache.path, place,
                                               image_id))
            for kind, image_id in planted.ids.items()}


HARD_SIZE = len(b'linked from the cache\n')


class PlantedSite:
    """Two images, a queued one and every hostile entry; a daemon on it.

    The daemon's limit is one byte, so prune has everything to evict.
    """

    def __init__(self, tmp_path, driver, daemon):
        self.root = tmp_path
        self.driver = driver
        self.daemon = daemon

    def api(self, method, path, status, **kwargs):
        reply = rawhttp.raw_request(self.daemon.port, method, path.encode(),
                                    **kwargs)
        assert reply.status == status, (method, path, reply,
                                        self.daemon.diagnostics())
        return reply


@pytest.fixture(params=['sqlite', 'xattr'])
def planted(request, tmp_path):
    """A PlantedSite; afterwards, nothing outside the cache has changed.

    No canary changed content, mode or presence, the dangling link's
    target was never created, the hard-linked canaries kept their one
    other name, and the service logged no traceback.
    """
    driver = request.param
    cache = caches.make(driver, tmp_path / 'cache')
    real = [cache.add_image(size=3 * KIB, last_accessed=1000.0 + i)
            for i in range(2)]
    queued = cache.queue()
    entries = Planted(tmp_path, cache)
    outside = entries.outside_state()
    with running.daemon(tmp_path, cache.path,
                        image_cache_driver=driver,
                        image_cache_max_size=1) as daemon:
        site = PlantedSite(tmp_path, driver, daemon)
        site.cache, site.real, site.queued = cache, real, queued
        site.entries = entries
        yield site
        assert rawhttp.answers(daemon.port)
        log = daemon.log()
    assert entries.outside_state() == outside
    for canary in entries.hard_canaries.values():
        st = os.stat(canary)
        assert stat.S_IMODE(st.st_mode) == 0o604
    assert not os.path.lexists(entries.dangling_target)
    assert 'Traceback' not in log


def _link_ids(planted):
    """Ids that are only links, FIFOs or directories, wherever they are."""
    return (planted.entries.link_only_ids()
            + list(planted.entries.queue_only.values()))


def test_listing_shows_regular_files_only(planted):
    """Links, FIFOs and directories are neither cached nor queued.

    A hard link is a regular file: in queue/ it is queued, and, where the
    files are the records (xattr), in the base directory it is cached.
    """
    hardlink = planted.entries.ids['hardlink']
    listing = planted.api('GET', '/v2/cache', 200).json()
    cached = {r['image_id'] for r in listing['cached_images']}
    assert cached == set(planted.real) | (
        {hardlink} if planted.driver == 'xattr' else set())
    assert set(listing['queued_images']) == {planted.queued, hardlink}


def test_queueing_never_follows(planted):
    """Whatever already holds the name wins; nothing is followed."""
    for image_id in _link_ids(planted):
        planted.api('PUT', '/v2/cache/%s' % image_id, 202)
    assert all(_kinds_left(planted.entries, '').values())


def test_an_id_that_is_only_a_link_is_not_cached(planted):
    for image_id in _link_ids(planted):
        reply = planted.api('DELETE', '/v2/cache/%s' % image_id, 404)
        hostile.assert_clean_error(reply, 404, planted.root)
    assert all(_kinds_left(planted.entries, '').values())


def test_clean_removes_entries_never_their_targets(planted):
    """invalid/ and incomplete/ (all stalled) lose all but directories.

    Only the hard links' bytes were freed: the other entries hold none.
    """
    assert running.manage_json(planted.daemon.config_path, 'clean') == {
        'total_files_cleaned': 2 * 5, 'total_bytes_cleaned': 2 * HARD_SIZE}
    for place in ('invalid', 'incomplete'):
        assert planted.entries.listing(place) == {
            planted.entries.ids['dir']}, place
    assert planted.api('POST', '/v2/cache/clean', 200).json() == {
        'total_files_cleaned': 0, 'total_bytes_cleaned': 0}


def test_prune_evicts_images_only(planted):
    """Over a one-byte limit, the two images and the hard link go.

    The hard link is an image without a record, an hour old: evicted
    first. Nothing else in the base directory is an image.
    """
    assert running.manage_json(planted.daemon.config_path, 'prune') == {
        'total_files_pruned': 3,
        'total_bytes_pruned': 6 * KIB + HARD_SIZE}
    assert planted.api('POST', '/v2/cache/prune', 200).json() == {
        'total_files_pruned': 0, 'total_bytes_pruned': 0}
    assert _kinds_left(planted.entries, '') == dict(
        {kind: True for kind in Planted.KINDS}, hardlink=False)


def test_clearing_leaves_what_is_no_image(planted):
    """Clearing the queue removes its links, never what they point at."""
    left = dict({kind: True for kind in Planted.KINDS}, hardlink=False)
    planted.api('DELETE', '/v2/cache', 204,
                headers=[(b'x-image-cache-clear-target', b'cache')])
    assert _kinds_left(planted.entries, '') == left
    planted.api('DELETE', '/v2/cache', 204,
                headers=[(b'x-image-cache-clear-target', b'queue')])
    assert planted.entries.listing('queue') == {planted.entries.ids['dir']}
    planted.api('DELETE', '/v2/cache', 204)
    assert _kinds_left(planted.entries, '') == left
    assert planted.api('GET', '/v2/cache', 200).json() == {
        'cached_images': [], 'queued_images': []}


def test_a_record_whose_file_became_a_link(tmp_path):
    """A tracked image replaced by a symlink: the link is never followed.

    The record is stale (no regular file), so delete forgets it (204) and
    clean forgets it too; the link itself stays in the base dir, and the
    canary it points at is untouched.
    """
    cache = caches.SqliteCache(tmp_path / 'cache')
    outside = tmp_path / 'outside'
    outside.mkdir()
    canary = outside / 'canary'
    canary.write_bytes(b'precious\n')
    deleted, cleaned = cache.add_row(size=KIB), cache.add_row(size=KIB)
    for image_id in (deleted, cleaned):
        os.symlink(canary, os.path.join(cache.path, image_id))
    before = hostile.tree(outside)

    with running.daemon(tmp_path, cache.path,
                        image_cache_max_size=0) as daemon:
        reply = rawhttp.raw_request(daemon.port, 'GET', b'/v2/cache')
        assert {r['image_id'] for r in reply.json()['cached_images']} == {
            deleted, cleaned}
        assert rawhttp.raw_request(
            daemon.port, 'DELETE',
            b'/v2/cache/' + deleted.encode()).status == 204
        assert rawhttp.raw_request(
            daemon.port, 'DELETE',
            b'/v2/cache/' + deleted.encode()).status == 404
        assert running.manage_json(daemon.config_path, 'prune') == {
            'total_files_pruned': 0, 'total_bytes_pruned': 0}
        assert running.manage_json(daemon.config_path, 'clean') == {
            'total_files_cleaned': 0, 'total_bytes_cleaned': 0}

    assert cache.rows() == {}
    assert all(os.path.islink(os.path.join(cache.path, i))
               for i in (deleted, cleaned))
    assert hostile.tree(outside) == before


def test_symlinked_subdirectories_are_never_entered(tmp_path):
    """invalid/, incomplete/ and queue/ replaced by links to outside dirs.

    Each outside dir is full of stalled files named like images. clean
    refuses to enter them (nothing is removed), the queue reads as empty,
    queueing is a clean error that creates nothing, delete and clear touch
    nothing outside, and the service keeps answering.
    """
    cache = caches.SqliteCache(tmp_path / 'cache')
    image = cache.add_image(size=KIB, last_accessed=1000.0)
    outside = tmp_path / 'outside'
    outside.mkdir()
    victims = {}
    past = time.time() - 2 * 86400
    for sub in ('invalid', 'incomplete', 'queue'):
        os.rmdir(os.path.join(cache.path, sub))
        target = outside / sub
        target.mkdir()
        victims[sub] = caches.new_id()
        (target / victims[sub]).write_bytes(b'outside\n')
        os.utime(target / victims[sub], (past, past))
        os.symlink(target, os.path.join(cache.path, sub))
    before = hostile.tree(outside)

    with running.daemon(tmp_path, cache.path,
                        image_cache_stall_time=1) as daemon:
        port = daemon.port
        assert running.manage_json(daemon.config_path, 'clean') == {
            'total_files_cleaned': 0, 'total_bytes_cleaned': 0}
        assert rawhttp.raw_request(port, 'POST', b'/v2/cache/clean').json() \
            == {'total_files_cleaned': 0, 'total_bytes_cleaned': 0}
        assert rawhttp.raw_request(port, 'GET', b'/v2/cache').json() == {
            'cached_images': [dict(image_id=image, **_record(cache, image))],
            'queued_images': []}
        new = caches.new_id()
        reply = rawhttp.raw_request(port, 'PUT', b'/v2/cache/' + new.encode())
        message = hostile.assert_clean_error(reply, 500, tmp_path)
        assert 'directory' in message
        hostile.assert_clean_error(rawhttp.raw_request(
            port, 'DELETE', b'/v2/cache/' + victims['queue'].encode()), 404,
            tmp_path)
        for target in (b'queue', b'cache', b''):
            assert rawhttp.raw_request(
                port, 'DELETE', b'/v2/cache',
                headers=[(b'x-image-cache-clear-target', target)]
            ).status == 204
        assert rawhttp.answers(daemon.port)
        log = daemon.log()

    assert hostile.tree(outside) == before
    assert not os.path.lexists(outside / 'queue' / new)
    assert 'is not a directory; ignoring it' in log
    assert 'Traceback' not in log


def _record(cache, image_id):
    last_accessed, size, hits = cache.rows()[image_id]
    return {'hits': hits, 'last_accessed': last_accessed,
            'last_modified': last_accessed, 'size': size}


def test_a_fifo_in_the_cache_never_blocks_the_service(tmp_path):
    """FIFOs everywhere, named like images, while runs are periodic.

    Opening one would block the opening thread until a writer came; the
    timers must go on running (the service's own record of runs shows
    them) and the API answering.
    """
    cache = caches.SqliteCache(tmp_path / 'cache')
    fifos = {}
    for place in ('', 'invalid', 'incomplete', 'queue'):
        fifos[place] = os.path.join(cache.path, place, caches.new_id())
        os.mkfifo(fifos[place])
    with running.daemon(tmp_path, cache.path, cache_clean_interval=1,
                        cache_prune_interval=1,
                        image_cache_max_size=0) as daemon:
        def periodic_runs():
            reply = rawhttp.raw_request(daemon.port, 'GET', b'/v2/cache/runs')
            assert reply.status == 200, reply
            runs = [r for r in reply.json()['runs']
                    if r['trigger'] == 'periodic']
            assert all(r['outcome'] == 'succeeded' for r in runs), runs
            done = collections.Counter(r['task'] for r in runs)
            return done['clean'] >= 2 and done['prune'] >= 2

        processes.wait_for(periodic_runs, 'periodic cleans and prunes',
                           diagnostics=daemon.diagnostics)
        assert not os.path.lexists(fifos['invalid'])
        for place in ('', 'queue'):
            image_id = os.path.basename(fifos[place])
            reply = rawhttp.raw_request(daemon.port, 'DELETE',
                                        b'/v2/cache/' + image_id.encode())
            hostile.assert_clean_error(reply, 404, tmp_path)
        assert rawhttp.raw_request(daemon.port, 'DELETE',
                                   b'/v2/cache').status == 204
        assert rawhttp.answers(daemon.port)
    assert stat.S_ISFIFO(os.lstat(fifos['']).st_mode)
    assert not os.path.lexists(fifos['queue'])
