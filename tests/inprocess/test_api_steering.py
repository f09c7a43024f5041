"""Seeing and steering deletions through the real WSGI stack: dry runs,
pins, status and the record of runs, with their policies and bad input.
"""

import json
import os
import shutil

import pytest

from cache_maint import state

from tests.inprocess.test_api import API
from tests.inprocess.test_api import assert_json_error
from tests.support import caches

KIB = caches.KIB


@pytest.fixture
def api(tmp_path):
    return API(tmp_path, image_cache_max_size=2 * KIB)


def fill(api, count):
    return [api.cache.add_image(last_accessed=1000.0 + i)
            for i in range(count)]


class TestDryRun:
    def test_prune_dry_run_then_the_real_run(self, api):
        ids = fill(api, 5)
        preview = api.request('POST', '/v2/cache/prune?dry_run=true')
        assert preview.status_int == 200
        answer = preview.json
        assert answer['dry_run'] is True
        assert answer['total_files_pruned'] == 3
        assert [i['image_id'] for i in answer['images']] == ids[:3]
        assert set(answer['images'][0]) == {
            'image_id', 'size', 'last_accessed', 'hits', 'reason'}
        assert api.cache.images() == set(ids)
        # A dry run is no run: the record of runs does not show it.
        assert api.request('GET', '/v2/cache/runs').json['runs'] == []
        real = api.request('POST', '/v2/cache/prune')
        assert real.json == {'total_files_pruned': 3,
                             'total_bytes_pruned': 3 * KIB}
        run, = api.request('GET', '/v2/cache/runs').json['runs']
        assert run['removed'] == ids[:3]

    @pytest.mark.parametrize('value', ['false', '0', 'no', 'OFF'])
    def test_false_is_a_real_run(self, api, value):
        fill(api, 3)
        answer = api.request('POST', '/v2/cache/prune?dry_run=%s' % value)
        assert answer.json == {'total_files_pruned': 1,
                               'total_bytes_pruned': KIB}

    @pytest.mark.parametrize('query', ['dry_run=maybe', 'dry_run=%FF',
                                       'dry_run=true&dry_run=false',
                                       'dry_run=' + 'x' * 5000, 'dry_run',
                                       'dry_run=', 'dry_run=%20true',
                                       'dry-run=true', 'dryrun=1',
                                       '%FF=1'])
    def test_bad_dry_run_is_400_and_removes_nothing(self, api, query):
        ids = fill(api, 5)
        assert_json_error(api.request('POST', '/v2/cache/prune?' + query),
                          400)
        assert api.cache.images() == set(ids)

    def test_clean_dry_run(self, api):
        api.cache.add_invalid(size=KIB, name=caches.new_id())
        answer = api.request('POST', '/v2/cache/clean?dry_run=1').json
        assert answer['dry_run'] is True
        assert [(f['reason'], f['size']) for f in answer['files']] == [
            ('invalid', KIB)]
        assert len(api.cache.listdir('invalid')) == 1

    def test_dry_run_needs_the_task_policy(self, api):
        fill(api, 5)
        assert_json_error(api.request('POST', '/v2/cache/prune?dry_run=true',
                                      token='member'), 403)


class TestPins:
    def test_pin_round_trip(self, api):
        image_id = caches.new_id()
        created = api.request('PUT', '/v2/cache/pins/%s' % image_id,
                              body=json.dumps({'note': 'golden'}).encode())
        assert created.status_int == 201
        assert created.json['image_id'] == image_id
        assert created.json['note'] == 'golden'
        again = api.request('PUT', '/v2/cache/pins/%s' % image_id)
        assert again.status_int == 200
        assert again.json == created.json
        listed = api.request('GET', '/v2/cache/pins').json
        assert listed == {'pins': [created.json]}
        gone = api.request('DELETE', '/v2/cache/pins/%s' % image_id)
        assert (gone.status_int, gone.body) == (204, b'')
        assert_json_error(api.request(
            'DELETE', '/v2/cache/pins/%s' % image_id), 404)
        assert api.request('GET', '/v2/cache/pins').json == {'pins': []}

    def test_pinned_image_survives_prune(self, api):
        ids = fill(api, 5)
        api.request('PUT', '/v2/cache/pins/%s' % ids[0])
        answer = api.request('POST', '/v2/cache/prune').json
        assert answer['total_files_pruned'] == 3
        assert ids[0] in api.cache.images()
        run, = api.request('GET', '/v2/cache/runs').json['runs']
        assert run['skipped_pinned'] == 1

    def test_pins_survive_a_new_application(self, api, tmp_path):
        # A restart or a reload builds everything again from the config.
        image_id = caches.new_id()
        api.request('PUT', '/v2/cache/pins/%s' % image_id)
        again = API(tmp_path, image_cache_max_size=2 * KIB)
        assert [p['image_id'] for p in again.request(
            'GET', '/v2/cache/pins').json['pins']] == [image_id]

    @pytest.mark.parametrize('path', [
        '/v2/cache/pins/not-an-id', '/v2/cache/pins/%00',
        '/v2/cache/pins/%s' % caches.new_id().upper()])
    def test_bad_id_is_400(self, api, path):
        assert_json_error(api.request('PUT', path), 400)
        assert api.request('GET', '/v2/cache/pins').json == {'pins': []}

    @pytest.mark.parametrize('body', [
        b'[]', b'"note"', b'{"note": 5}', b'{"note": "x\\n"}',
        b'{"other": "x"}', b'{', json.dumps({'note': 'n' * 256}).encode(),
        b'[' * 100000])
    def test_bad_body_is_400_and_pins_nothing(self, api, body):
        assert_json_error(api.request(
            'PUT', '/v2/cache/pins/%s' % caches.new_id(), body=body), 400)
        assert api.request('GET', '/v2/cache/pins').json == {'pins': []}

    @pytest.mark.parametrize('method, path', [
        ('PUT', '/v2/cache/pins/%s' % caches.new_id()),
        ('DELETE', '/v2/cache/pins/%s' % caches.new_id()),
        ('GET', '/v2/cache/pins'), ('GET', '/v2/cache/status')])
    def test_member_is_refused(self, api, method, path):
        assert_json_error(api.request(method, path, token='member'), 403)
        assert_json_error(api.request(method, path, token=None), 401)

    def test_unusable_state_is_503_with_no_path(self, api, tmp_path):
        state_dir = api.cache.path + '/.cache-maint'
        api.request('PUT', '/v2/cache/pins/%s' % caches.new_id())
        for name in os.listdir(state_dir):
            os.unlink(os.path.join(state_dir, name))
        with open(os.path.join(state_dir, state.FILENAME), 'wb') as f:
            f.write(b'\0not a database' * 100)
        # The open connection may still read its cached pages: a new
        # application opens the file afresh.
        fresh = API(tmp_path, image_cache_max_size=2 * KIB)
        assert_json_error(fresh.request(
            'PUT', '/v2/cache/pins/%s' % caches.new_id()), 503)


class TestStatus:
    def test_status_document(self, api):
        ids = fill(api, 3)
        api.cache.add_invalid(size=KIB, name=caches.new_id())
        api.request('PUT', '/v2/cache/pins/%s' % ids[0])
        api.request('POST', '/v2/cache/prune')
        document = api.request('GET', '/v2/cache/status').json
        part = document['cache']
        assert (part['size_bytes'], part['images']) == (2 * KIB, 2)
        assert part['max_size_bytes'] == 2 * KIB
        assert part['invalid'] == {'files': 1, 'bytes': KIB}
        assert part['pins'] == 1
        assert part['filesystem']['total_bytes'] > 0
        assert document['driver'] == 'sqlite'
        prune = document['tasks']['prune']
        assert prune['interval'] == 1800
        assert prune['last_run']['outcome'] == 'succeeded'
        assert prune['last_run']['trigger'] == 'API'
        assert document['tasks']['clean']['last_run'] is None
        assert set(document['watcher']) == {'enabled', 'active'}
        assert '/tmp' not in json.dumps(document)

    def test_status_of_a_missing_cache_dir_is_still_an_answer(self, api):
        shutil.rmtree(api.cache.path)
        document = api.request('GET', '/v2/cache/status')
        assert document.status_int == 200
        assert document.json['cache']['error']
        assert '/tmp' not in document.text


class TestRunsQuery:
    def test_task_and_limit(self, api):
        for _ in range(3):
            api.request('POST', '/v2/cache/clean')
        api.request('POST', '/v2/cache/prune')
        runs = api.request('GET', '/v2/cache/runs').json['runs']
        assert [r['task'] for r in runs] == ['clean'] * 3 + ['prune']
        only = api.request('GET', '/v2/cache/runs?task=clean&limit=2')
        assert [r['id'] for r in only.json['runs']] == [
            r['id'] for r in runs[1:3]]

    def test_runs_wait_in_memory_while_the_state_fails(self, tmp_path):
        parent = tmp_path / 'not-yet'
        api = API(tmp_path, maintenance__state_dir=str(parent / 'state'))
        api.request('POST', '/v2/cache/clean')
        run, = api.request('GET', '/v2/cache/runs').json['runs']
        assert (run['task'], run.get('id')) == ('clean', None)
        status = api.request('GET', '/v2/cache/status').json
        assert status['tasks']['clean']['last_run']['trigger'] == 'API'
        parent.mkdir()
        api.request('POST', '/v2/cache/prune')
        runs = api.request('GET', '/v2/cache/runs').json['runs']
        assert [(r['task'], bool(r.get('id'))) for r in runs] == [
            ('clean', True), ('prune', True)]

    @pytest.mark.parametrize('query', [
        'task=purge', 'limit=0', 'limit=201', 'limit=-1', 'limit=1e3',
        'limit=%D9%A3', 'task=clean&task=prune', 'tasks=clean'])
    def test_bad_query_is_400(self, api, query):
        assert_json_error(api.request('GET', '/v2/cache/runs?' + query), 400)
