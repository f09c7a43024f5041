"""Clean without a full read of a shared store (issue 17, item 1).

With centralized_db, clean reads all of this node's records only on its
first run and every ``[maintenance] reconcile_interval`` seconds; in between
it looks up, by id, the images it saw before and that are gone, and those
prune evicted. Each case counts what clean read from the database and says
which stale records it found; deleting stays as safe as a full look.
"""

import json
import os
import sqlite3
import time

import pytest

from cache_maint import cache as cm_cache
from cache_maint.drivers import node_rows
from cache_maint import maintenance
from cache_maint import reconcile
from cache_maint import runs
from cache_maint import state

from tests.support import caches
from tests.support import databases
from tests.support import plans

KIB = caches.KIB
LONG_AGO = 1000.0


def central(tmp_path, server_urls, server='sqlite'):
    return caches.CentralCache(
        tmp_path / 'cache',
        databases.central_url(server, tmp_path, server_urls))


@pytest.fixture
def cache(tmp_path, server_urls):
    built = central(tmp_path, server_urls)
    yield built
    built.close()


@pytest.fixture(params=['postgresql', 'mysql'])
def server_cache(request, tmp_path, server_urls):
    built = central(tmp_path, server_urls, request.param)
    yield built
    built.close()


def open_cache(cache, **overrides):
    subject = cm_cache.Cache.from_conf(cache.conf(**overrides))
    subject.setup()
    return subject


class Reads:
    """What the driver read: full node-scoped reads, and ids looked up."""

    def __init__(self, metadata, monkeypatch):
        self.full = 0
        self.by_id = []
        real_recorded, real_records_of = (metadata.recorded_ids,
                                          metadata.records_of)

        def recorded_ids():
            self.full += 1
            return real_recorded()

        def records_of(image_ids):
            image_ids = list(image_ids)
            self.by_id.append(set(image_ids))
            return real_records_of(image_ids)

        monkeypatch.setattr(metadata, 'recorded_ids', recorded_ids)
        monkeypatch.setattr(metadata, 'records_of', records_of)


def clean(subject, interval=86400):
    return maintenance.clean(subject, 86400, reconcile_interval=interval)


def remove_file(cache, image_id):
    os.unlink(os.path.join(cache.path, image_id))


def memo(subject):
    return subject.state.get(reconcile.MEMO)


class TestReconciliation:
    def test_the_first_clean_reads_all_the_next_ones_by_id(
            self, cache, monkeypatch):
        ids = [cache.add_image(last_accessed=LONG_AGO + i) for i in range(6)]
        ghost = cache.add_row(last_accessed=LONG_AGO)
        subject = open_cache(cache)
        reads = Reads(subject.metadata, monkeypatch)

        first = clean(subject)
        assert (first.full_reconciliation, first.records_forgotten) == (
            True, 1)
        assert first.records_checked == 7
        assert reads.full == 1
        assert ghost not in cache.rows()
        assert subject.state.known_images() == set(ids)

        # Two files go without their records (glance-api killed between
        # the two); the next clean looks up those two ids, and no more.
        remove_file(cache, ids[0])
        remove_file(cache, ids[1])
        second = clean(subject)
        assert (second.full_reconciliation, second.records_checked,
                second.records_forgotten) == (False, 2, 2)
        assert reads.full == 1
        assert reads.by_id == [{ids[0], ids[1]}]
        assert set(cache.rows()) == set(ids[2:])
        # Gone and without a record: not looked up again.
        assert subject.state.known_images() == set(ids[2:])
        third = clean(subject)
        assert (third.records_checked, third.records_forgotten) == (0, 0)

    def test_images_a_prune_saw_are_looked_up(self, cache):
        subject = open_cache(cache)
        clean(subject)
        late = cache.add_image(last_accessed=LONG_AGO)
        assert maintenance.prune(subject, 10 * KIB).files == 0
        assert late in subject.state.known_images()
        remove_file(cache, late)
        result = clean(subject)
        assert (result.full_reconciliation, result.records_forgotten) == (
            False, 1)
        assert cache.rows() == {}

    def test_images_prune_evicted_are_looked_up(self, cache):
        ids = [cache.add_image(last_accessed=LONG_AGO + i) for i in range(3)]
        subject = open_cache(cache)
        clean(subject)
        with sqlite3.connect(subject.state.path) as db:
            db.execute('DELETE FROM known_images')
        # What prune evicted, and whose record came back without its file
        # (glance-api recorded it again while it went).
        subject.state.remember_evicted([(ids[0], KIB, 'size')])
        remove_file(cache, ids[0])
        result = clean(subject)
        assert (result.full_reconciliation, result.records_checked,
                result.records_forgotten) == (False, 1, 1)
        assert set(cache.rows()) == set(ids[1:])

    def test_a_record_never_seen_with_its_file_waits_for_the_interval(
            self, cache, monkeypatch):
        subject = open_cache(cache)
        clean(subject)
        ghost = cache.add_row(last_accessed=LONG_AGO)
        result = clean(subject)
        assert (result.full_reconciliation, result.records_forgotten) == (
            False, 0)
        assert ghost in cache.rows()
        # The interval has passed since the first clean.
        later = time.time() + 86400
        monkeypatch.setattr(reconcile.time, 'time', lambda: later)
        result = clean(subject)
        assert (result.full_reconciliation, result.records_forgotten) == (
            True, 1)
        assert memo(subject)['reconciled_at'] == later

    def test_an_interval_of_zero_reconciles_every_time(self, cache):
        subject = open_cache(cache)
        for _ in range(3):
            assert clean(subject, interval=0).full_reconciliation

    def test_another_node_url_reconciles_fully(self, cache):
        clean(open_cache(cache))
        other = open_cache(cache, worker_self_reference_url='http://other')
        assert clean(other).full_reconciliation
        assert not clean(other).full_reconciliation

    @pytest.mark.parametrize('damage', ['mangled', 'unreadable', 'clock'])
    def test_a_state_it_cannot_trust_means_a_full_reconciliation(
            self, cache, damage):
        subject = open_cache(cache)
        clean(subject)
        ghost = cache.add_row(last_accessed=LONG_AGO)
        if damage == 'mangled':
            subject.state.put(reconcile.MEMO, {'scope': 3})
        elif damage == 'clock':
            ahead = dict(memo(subject), reconciled_at=time.time() + 86400)
            subject.state.put(reconcile.MEMO, ahead)
        else:
            with open(subject.state.path, 'wb') as f:
                f.write(b'not a database' * 100)
        result = clean(subject)
        assert result.full_reconciliation
        assert result.records_forgotten == 1
        assert ghost not in cache.rows()

    def test_a_record_made_since_the_look_began_is_kept(
            self, cache, monkeypatch):
        image_id = cache.add_image(last_accessed=LONG_AGO)
        subject = open_cache(cache)
        clean(subject)
        remove_file(cache, image_id)
        real_records_of = subject.metadata.records_of

        def recorded_again_meanwhile(image_ids):
            # glance-api caches it again (file, then a record made now)
            # and deletes the file again, after clean began to look.
            with cache.engine.begin() as conn:
                conn.execute(caches.glance_schema.cached_images.delete())
            cache.record([plans.Image(image_id, KIB, time.time() + 5,
                                      time.time() + 5)])
            return real_records_of(image_ids)

        monkeypatch.setattr(subject.metadata, 'records_of',
                            recorded_again_meanwhile)
        result = clean(subject)
        assert result.records_forgotten == 0
        assert image_id in cache.rows()
        # Still without its file: looked up again next time.
        assert image_id in subject.state.known_images()

    def test_a_dry_run_looks_as_the_run_would_and_writes_nothing(
            self, cache):
        ids = [cache.add_image(last_accessed=LONG_AGO + i) for i in range(4)]
        subject = open_cache(cache)
        preview = maintenance.clean(subject, 86400, dry_run=True)
        assert preview.full_reconciliation and not os.path.exists(
            subject.state.path)
        clean(subject)
        remove_file(cache, ids[0])
        before = (memo(subject), subject.state.known_images())
        preview = maintenance.clean(subject, 86400, dry_run=True)
        assert (preview.full_reconciliation, preview.records_checked,
                preview.records_forgotten) == (False, 1, 1)
        assert (memo(subject), subject.state.known_images()) == before
        real = clean(subject)
        assert (real.full_reconciliation, real.records_checked,
                real.records_forgotten) == (False, 1, 1)

    def test_the_known_images_are_bounded(self, cache, monkeypatch):
        monkeypatch.setattr(state, 'MAX_KNOWN_IMAGES', 3)
        for _ in range(4):
            cache.add_image()
        subject = open_cache(cache)
        clean(subject)
        assert subject.state.known_images() == set()
        assert memo(subject) is None
        assert clean(subject).full_reconciliation

    def test_the_run_record_says_how_clean_looked(self, cache):
        cache.add_row(last_accessed=LONG_AGO)
        subject = open_cache(cache)
        runner = runs.TaskRunner(subject.metadata.conf, subject)
        runner.clean(trigger='test')
        runner.clean(trigger='test')
        runner.prune(trigger='test')
        first, second, pruned = runner.runs()
        assert first['records'] == {'checked': 1, 'forgotten': 1,
                                    'full_reconciliation': True}
        assert second['records'] == {'checked': 0, 'forgotten': 0,
                                     'full_reconciliation': False}
        assert pruned['records'] is None
        # The answer of a clean is Glance's, unchanged.
        assert set(first['result']) == {
            'total_files_cleaned', 'total_bytes_cleaned'}
        json.dumps(first)


class TestOnServers:
    def test_clean_by_id_leaves_other_nodes_alone(self, server_cache,
                                                  monkeypatch):
        monkeypatch.setattr(node_rows, 'IDS_PER_STATEMENT', 2)
        cache = server_cache
        ids = [cache.add_image(last_accessed=LONG_AGO + i) for i in range(5)]
        for url in (caches.OTHER_NODE_URL, 'http://node-3:9292'):
            cache.record([plans.Image(i, KIB, 5.0, 5.0) for i in ids],
                         node_url=url)
        theirs = {url: cache.rows(url) for url in (caches.OTHER_NODE_URL,
                                                   'http://node-3:9292')}
        subject = open_cache(cache)
        assert clean(subject).full_reconciliation
        for image_id in ids[:3]:
            remove_file(cache, image_id)
        result = clean(subject)
        assert (result.full_reconciliation, result.records_checked,
                result.records_forgotten) == (False, 3, 3)
        assert set(cache.rows()) == set(ids[3:])
        assert {url: cache.rows(url) for url in theirs} == theirs


class TestLocalStores:
    @pytest.mark.parametrize('kind', ['sqlite', 'xattr'])
    def test_every_clean_reads_all_and_remembers_nothing(self, tmp_path,
                                                         kind):
        built = caches.make(kind, tmp_path / 'cache')
        built.add_image()
        subject = cm_cache.Cache.from_conf(built.conf())
        subject.setup()
        for _ in range(2):
            assert clean(subject).full_reconciliation
        assert subject.state.known_images() == set()
        assert memo(subject) is None
