"""cache-maint's own state database: pins, runs, evicted images, bounds,
and the faults it must report clearly (a missing parent, a corrupt file).
"""

import os
import shutil
import threading

import pytest

from cache_maint import exception
from cache_maint import state

from tests.support import caches


@pytest.fixture
def store(tmp_path):
    subject = state.StateStore(str(tmp_path / 'state'))
    yield subject
    subject.close()


def run_record(task='prune', outcome='succeeded', finished_at=1000.0):
    return {'task': task, 'trigger': 'periodic', 'outcome': outcome,
            'started_at': finished_at - 1, 'finished_at': finished_at}


class TestPins:
    def test_pin_creates_then_finds(self, store):
        image_id = caches.new_id()
        pin, created = store.pin(image_id, 'golden', now=10.0)
        assert created
        assert pin == {'image_id': image_id, 'pinned_at': 10.0,
                       'note': 'golden'}
        again, created = store.pin(image_id, now=20.0)
        assert not created
        assert again == pin           # its time and its note are kept

    def test_a_new_note_replaces_the_old(self, store):
        image_id = caches.new_id()
        store.pin(image_id, 'old')
        pin, created = store.pin(image_id, 'new')
        assert (pin['note'], created) == ('new', False)

    def test_unpin(self, store):
        image_id = caches.new_id()
        store.pin(image_id)
        assert store.unpin(image_id)
        assert not store.unpin(image_id)
        assert store.pins() == []

    def test_pins_are_bounded(self, store, monkeypatch):
        monkeypatch.setattr(state, 'MAX_PINS', 3)
        ids = [caches.new_id() for _ in range(4)]
        for image_id in ids[:3]:
            store.pin(image_id)
        with pytest.raises(exception.TooManyPins):
            store.pin(ids[3])
        assert store.pin(ids[0])[1] is False   # pinned already: fine
        assert store.pinned_ids() == set(ids[:3])

    def test_two_processes_pinning_at_once_both_succeed(self, tmp_path):
        ids = [caches.new_id() for _ in range(100)]
        results = []

        def pin_all():
            subject = state.StateStore(str(tmp_path / 'state'))
            results.append([subject.pin(image_id)[1] for image_id in ids])

        threads = [threading.Thread(target=pin_all) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(results) == 3            # no thread failed
        assert [sum(made) for made in zip(*results)] == [1] * len(ids)

    def test_pins_are_shared_by_two_stores_on_one_directory(self, tmp_path):
        # The service and cache-maint-manage are two processes, each with
        # its own store on the same directory.
        first = state.StateStore(str(tmp_path / 'state'))
        second = state.StateStore(str(tmp_path / 'state'))
        image_id = caches.new_id()
        first.pin(image_id)
        assert second.pinned_ids() == {image_id}
        second.unpin(image_id)
        assert first.pinned_ids() == set()


class TestRuns:
    def test_runs_get_ids_and_come_back_oldest_first(self, store):
        first = store.add_run(run_record(finished_at=1.0))
        second = store.add_run(run_record('clean', finished_at=2.0))
        assert second['id'] > first['id']
        assert [r['id'] for r in store.runs()] == [first['id'], second['id']]
        assert [r['task'] for r in store.runs(task='clean')] == ['clean']
        assert [r['id'] for r in store.runs(after=first['id'])] == [
            second['id']]
        assert [r['id'] for r in store.runs(limit=1)] == [second['id']]

    def test_history_is_bounded_per_task(self, store):
        store.add_run(run_record('clean', finished_at=0.0))
        for i in range(state.RUN_HISTORY + 25):
            store.add_run(run_record(finished_at=float(i)))
        kept = store.runs(task='prune', limit=10 * state.RUN_HISTORY)
        assert len(kept) == state.RUN_HISTORY
        assert kept[-1]['finished_at'] == state.RUN_HISTORY + 24.0
        # A day of prunes does not push out the daily clean.
        assert len(store.runs(task='clean')) == 1

    def test_last_runs_and_the_last_success_however_old(self, store):
        store.add_run(run_record('prune', 'succeeded', 1.0))
        store.add_run(run_record('clean', 'succeeded', 3.0))
        for i in range(state.RUN_HISTORY + 5):
            store.add_run(run_record('prune', 'failed', 10.0 + i))
        last = store.last_runs()
        assert (last['prune']['outcome'], last['clean']['outcome']) == (
            'failed', 'succeeded')
        good = store.last_successes()
        assert good['prune']['finished_at'] == 1.0
        assert good['clean']['finished_at'] == 3.0


class TestEvictions:
    def test_taken_once(self, store):
        gone, kept = caches.new_id(), caches.new_id()
        store.remember_evicted([(gone, 10, 'size'), (kept, 20, 'size')],
                               now=1000.0)
        assert store.take_evicted([gone, caches.new_id()], since=900.0) == {
            gone: 1000.0}
        assert store.take_evicted([gone], since=900.0) == {}
        assert store.evicted_since(900.0) == {kept: 1000.0}

    def test_taking_none_writes_nothing(self, store):
        # The metrics take what glance-api cached since their last look,
        # every few seconds, mostly nothing.
        assert store.take_evicted([], since=0.0) == {}
        assert not os.path.lexists(store.directory)

    def test_too_old_is_not_taken(self, store):
        image_id = caches.new_id()
        store.remember_evicted([(image_id, 10, 'size')], now=1000.0)
        assert store.take_evicted([image_id], since=1001.0) == {}

    def test_memory_is_bounded(self, store, monkeypatch):
        monkeypatch.setattr(state, 'MAX_EVICTIONS', 5)
        ids = [caches.new_id() for _ in range(8)]
        for i, image_id in enumerate(ids):
            store.remember_evicted([(image_id, 1, 'size')], now=1000.0 + i)
        assert set(store.evicted_since(0)) == set(ids[3:])
        store.remember_evicted([(caches.new_id(), 1, 'size')],
                               now=1000.0 + state.EVICTION_MEMORY + 100)
        assert len(store.evicted_since(0)) == 1


class TestFaults:
    def test_created_readable_by_its_owner_only(self, store):
        store.pin(caches.new_id())
        assert os.stat(store.directory).st_mode & 0o777 == 0o700

    def test_reading_creates_nothing(self, store):
        # status, pins, a dry run, or a prune on a full disk.
        assert (store.pins(), store.pinned_ids(), store.runs(),
                store.last_runs(), store.get('service')) == (
            [], set(), [], {}, None)
        assert not os.path.lexists(store.directory)
        os.mkdir(store.directory)
        open(store.path, 'wb').close()      # an empty file: no tables
        assert store.pins() == [] and store.runs() == []

    def test_made_as_root_it_belongs_to_the_owner_of_its_parent(
            self, tmp_path):
        if os.geteuid() != 0:
            pytest.skip('only root hands what it makes over')
        parent = tmp_path / 'cache'
        parent.mkdir()
        os.chown(parent, 65534, 65534)
        store = state.StateStore(str(parent / '.cache-maint'))
        store.pin(caches.new_id())
        for path in (store.directory, store.path):
            assert os.stat(path).st_uid == 65534, path

    def test_symlinks_are_never_followed(self, tmp_path):
        outside = tmp_path / 'outside'
        outside.mkdir()
        (tmp_path / 'cache').mkdir()
        os.symlink(outside, tmp_path / 'cache' / 'state')
        store = state.StateStore(str(tmp_path / 'cache' / 'state'))
        with pytest.raises(exception.StateError, match='symbolic link'):
            store.pin(caches.new_id())
        with pytest.raises(exception.StateError, match='symbolic link'):
            store.pins()
        os.unlink(tmp_path / 'cache' / 'state')
        os.mkdir(tmp_path / 'cache' / 'state')
        os.symlink(outside / 'victim', store.path)
        with pytest.raises(exception.StateError, match='symbolic link'):
            store.pin(caches.new_id())
        assert os.listdir(outside) == []

    def test_missing_parent_is_a_clear_error(self, tmp_path):
        store = state.StateStore(str(tmp_path / 'absent' / 'state'))
        with pytest.raises(exception.StateError, match='state_dir'):
            store.pin(caches.new_id())
        assert not (tmp_path / 'absent').exists()

    def test_a_file_in_the_way_is_a_clear_error(self, tmp_path):
        (tmp_path / 'state').write_text('not a directory')
        store = state.StateStore(str(tmp_path / 'state'))
        with pytest.raises(exception.StateError, match='not a directory'):
            store.pin(caches.new_id())

    def test_corrupt_database_is_reported_then_usable_once_mended(
            self, store):
        store.pin(caches.new_id())
        store.close()
        with open(store.path, 'wb') as f:
            f.write(b'\0garbage' * 512)
        with pytest.raises(exception.StateError, match='state.db'):
            store.pins()
        os.unlink(store.path)
        assert store.pins() == []       # the next use opens it afresh

    def test_a_removed_directory_is_made_again_at_the_next_use(self, store):
        store.pin(caches.new_id())
        shutil.rmtree(store.directory)
        assert store.pins() == []
        image_id = caches.new_id()
        store.pin(image_id)
        assert store.pinned_ids() == {image_id}

    def test_nothing_stays_open_between_uses(self, store):
        # An open descriptor would keep the cache's filesystem from being
        # unmounted (tests/faults/test_cache_dir_faults.py mounts on it).
        store.pin(caches.new_id())
        store.add_run(run_record())
        opened = [os.readlink('/proc/self/fd/%s' % fd)
                  for fd in os.listdir('/proc/self/fd')
                  if os.path.exists('/proc/self/fd/%s' % fd)]
        assert not [path for path in opened
                    if path.startswith(store.directory)]

    def test_a_mangled_record_is_left_out(self, store):
        kept = store.add_run(run_record(finished_at=1.0))
        store.add_run(run_record(finished_at=2.0))
        with store._transaction() as db:
            db.execute("UPDATE runs SET record = '{not json' WHERE id > ?",
                       (kept['id'],))
            for record in ('[1, 2]', '{"task": "prune"}',
                           '{"id": 9, "task": "prune", "trigger": "x", '
                           '"outcome": "failed", "started_at": "soon", '
                           '"finished_at": 3}'):
                db.execute("INSERT INTO runs (task, outcome, finished_at, "
                           "record) VALUES ('prune', 'failed', 3, ?)",
                           (record,))
        assert [r['id'] for r in store.runs()] == [kept['id']]
        assert store.last_runs() == {}  # the newest prune record is mangled

    def test_concurrent_writers_lose_nothing(self, tmp_path):
        stores = [state.StateStore(str(tmp_path / 'state'))
                  for _ in range(4)]

        def write(subject):
            for i in range(25):
                subject.add_run(run_record(finished_at=float(i)))

        threads = [threading.Thread(target=write, args=(s,)) for s in stores]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(stores[0].runs()) == 100
