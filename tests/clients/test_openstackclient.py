"""python-openstackclient 10.5: ``cached image ...``, and this package's
plugin commands: ``cache clean|prune [--dry-run]``, ``cache pin``, ``cache
unpin`` and ``cache pin list``.

Each ``openstack`` run costs about 2 s of start-up, so the runs are few.
"""

import http.server
import json
import threading

import pytest

from tests import clients

UNKNOWN = '0b9ab4e6-1d0d-4a7c-9d47-3a39d47a5c1f'


@pytest.fixture(autouse=True)
def pins(service):
    """pins(): the service's pins, read over HTTP; none are left after.

    The service, and so its state, lasts the module: a pin a test leaves
    would keep its image from every later prune.
    """
    def pins():
        response = service.request('GET', '/v2/cache/pins', token='admin')
        assert response.status_code == 200, response.text
        return response.json()['pins']
    yield pins
    for pin in pins():
        service.request('DELETE', '/v2/cache/pins/%s' % pin['image_id'],
                        token='admin')


@pytest.fixture(scope='module')
def osc(endpoint, home):
    """osc(who, *args): the openstack CLI as admin, demo or auth none."""
    def osc(who, *args, endpoint=endpoint):
        if who == 'none':       # sends the token "notused": not an admin
            auth = ['--os-auth-type', 'none', '--os-endpoint', endpoint]
        else:
            auth = ['--os-auth-type', 'admin_token', '--os-endpoint',
                    endpoint + '/v2', '--os-token', who]
        return clients.run('openstack', auth + list(args), home)
    return osc


def succeeded(result):
    assert (result.returncode, result.stderr) == (0, ''), result
    return result.stdout


def table(stdout):
    """The rows of a cliff table, as lists of cells."""
    return [[cell.strip() for cell in line.split('|')[1:-1]]
            for line in stdout.splitlines() if line.startswith('|')]


def test_commands_are_listed(osc):
    commands = succeeded(osc('none', 'help'))
    for command in ('cache clean', 'cache prune', 'cache pin',
                    'cache unpin', 'cache pin list', 'cached image list',
                    'cached image clear'):
        assert '\n  %s ' % command in commands
    assert 'cache-maint' in commands


def test_cached_image_list(osc, filled):
    listed = json.loads(succeeded(osc('admin', 'cached', 'image', 'list',
                                      '-f', 'json')))
    assert {row['ID']: (row['State'], row['Size'], row['Hits'])
            for row in listed} == dict(
        {image_id: ('cached', 6 * clients.KIB, i)
         for i, image_id in enumerate(filled.cached)},
        **{filled.queued: ('queued', 'N/A', 'N/A')})
    assert {row['Last Accessed (UTC)'] for row in listed} == {
        '2023-11-14T22:13:20', '2023-11-14T22:13:21', '2023-11-14T22:13:22',
        'N/A'}
    rows = table(succeeded(osc('admin', 'cached', 'image', 'list')))
    assert rows[0] == ['ID', 'State', 'Last Accessed (UTC)',
                       'Last Modified (UTC)', 'Size', 'Hits']
    assert {row[0] for row in rows[1:]} == set(filled.cached) | {
        filled.queued}
    filled.check(filled.before)


@pytest.mark.parametrize('flags, after', [
    ([], 'clear'), (['--cache'], 'clear cache'), (['--queue'], 'clear queue')])
def test_cached_image_clear(osc, filled, flags, after):
    assert succeeded(osc('admin', 'cached', 'image', 'clear', *flags)) == ''
    filled.check(filled.after(after))


def test_cached_image_queue(osc, cache):
    assert succeeded(osc('admin', 'cached', 'image', 'queue', UNKNOWN)) == ''
    assert clients.state(cache) == clients.State(queue=[UNKNOWN])


def test_cached_image_delete(osc, filled):
    assert succeeded(osc('admin', 'cached', 'image', 'delete',
                         filled.cached[0], filled.queued)) == ''
    filled.check(filled.after('delete'))


@pytest.mark.parametrize('task, counts', [
    ('clean', {'total_files_cleaned': 2, 'total_bytes_cleaned': 2048}),
    ('prune', {'total_files_pruned': 2, 'total_bytes_pruned': 12288})])
def test_cache_task_json(osc, filled, task, counts):
    shown = succeeded(osc('admin', 'cache', task, '-f', 'json'))
    assert json.loads(shown) == counts
    assert list(json.loads(shown)) == list(counts)      # files, then bytes
    filled.check(filled.after(task))


@pytest.mark.parametrize('task, counts', [
    ('clean', [['total_files_cleaned', '2'], ['total_bytes_cleaned', '2048']]),
    ('prune', [['total_files_pruned', '2'], ['total_bytes_pruned', '12288']])])
def test_cache_task_table(osc, filled, task, counts):
    shown = succeeded(osc('admin', 'cache', task))
    assert table(shown) == [['Field', 'Value']] + counts
    filled.check(filled.after(task))


class GlanceClean(http.server.BaseHTTPRequestHandler):
    """Glance 33's answers to discovery, to clean and prune, and to a GET.

    A GET under /v2/cache/ is a 405 (Glance's /cache/{image_id} takes PUT
    and DELETE only); the paths POSTed to are kept in ``server.posts``.
    """

    def _send(self, status, body, content_type):
        self.send_response(status)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.startswith('/v2/cache/'):
            self.send_response(405)
            self.send_header('Allow', 'DELETE, PUT')
            self.send_header('Content-Length', '0')
            self.end_headers()
            return
        href = 'http://127.0.0.1:%d/v2/' % self.server.server_port
        body = json.dumps({'versions': [{'id': 'v2.18', 'status': 'CURRENT',
                                         'links': [{'rel': 'self',
                                                    'href': href}]}]})
        self._send(300 if self.path == '/' else 200, body.encode(),
                   'application/json')

    def do_POST(self):
        self.server.posts.append(self.path)
        # webob's default: 200, text/html, empty body.
        self._send(200, b'', 'text/html; charset=UTF-8')

    def log_message(self, *args):
        pass


@pytest.fixture
def glance():
    """A stand-in for glance-api 33 (GlanceClean), serving in a thread."""
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), GlanceClean)
    server.posts = []
    server.url = 'http://127.0.0.1:%d' % server.server_port
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    yield server
    server.shutdown()
    thread.join()
    server.server_close()


def test_cache_clean_against_glance_shows_nothing(osc, glance):
    result = osc('admin', 'cache', 'clean', '-f', 'json', endpoint=glance.url)
    assert json.loads(succeeded(result)) == {}
    assert glance.posts == ['/v2/cache/clean']


@pytest.mark.parametrize('task', ['clean', 'prune'])
def test_dry_run_against_glance_is_refused_before_it_runs(osc, glance,
                                                          task):
    """Glance has the route but no dry run: it would really run the task."""
    result = osc('admin', 'cache', task, '--dry-run', endpoint=glance.url)
    assert (result.returncode, result.stdout) == (1, ''), result
    assert 'may not support --dry-run' in result.stderr
    assert glance.posts == []


@pytest.mark.parametrize('who, command, message', [
    ('demo', 'cached image list', 'You are not authorized to complete '
     'cache_list action.'),
    ('demo', 'cached image clear', 'Failed to clear image cache'),
    ('demo', 'cache clean', 'ForbiddenException: 403'),
    ('demo', 'cache prune', 'ForbiddenException: 403'),
    ('none', 'cached image list', 'You are not authorized to complete '
     'cache_list action.'),
    ('none', 'cache prune', 'ForbiddenException: 403'),
    ('demo', 'cache prune --dry-run', 'ForbiddenException: 403'),
    ('demo', 'cache pin %s' % UNKNOWN, 'ForbiddenException: 403'),
    ('demo', 'cache pin list', 'ForbiddenException: 403')])
def test_non_admin_is_refused(osc, filled, pins, who, command, message):
    result = osc(who, *command.split())
    assert (result.returncode, result.stdout) == (1, ''), result
    assert message in result.stderr
    filled.check(filled.before)
    assert pins() == []


def test_prune_dry_run_lists_what_the_next_prune_evicts(osc, cache, service,
                                                        pins):
    """Same victims, same order, same counts; the dry run removes nothing.

    25 KiB over a 10 KiB limit: the untracked file goes first, then the
    least recently used images; the pinned one is listed where it stands,
    kept, and the prune evicts the next one in its place.
    """
    images = [cache.add_image(size=6 * clients.KIB, last_accessed=1.7e9 + i,
                              hits=i) for i in range(4)]
    untracked = cache.add_image(size=clients.KIB, tracked=False)
    succeeded(osc('admin', 'cache', 'pin', images[1]))
    before = clients.state(cache)

    plan = json.loads(succeeded(osc('admin', 'cache', 'prune', '--dry-run',
                                    '-f', 'json')))
    assert clients.state(cache) == before
    assert [(i['image_id'], i['reason'], i['size'], i['hits'])
            for i in plan['images']] == [
        (untracked, 'untracked', clients.KIB, None),
        (images[0], 'size', 6 * clients.KIB, 0),
        (images[1], 'pinned', 6 * clients.KIB, 1),
        (images[2], 'size', 6 * clients.KIB, 2),
        (images[3], 'size', 6 * clients.KIB, 3)]
    victims = [i['image_id'] for i in plan['images']
               if i['reason'] != 'pinned']
    counts = {'total_files_pruned': 4, 'total_bytes_pruned': 19 * clients.KIB}
    assert plan == dict(counts, dry_run=True, images=plan['images'])

    rows = table(succeeded(osc('admin', 'cache', 'prune', '--dry-run')))
    assert rows[:4] == [['Field', 'Value'], ['total_files_pruned', '4'],
                        ['total_bytes_pruned', str(19 * clients.KIB)],
                        ['dry_run', 'True']]
    listed = [row[1].split() for row in rows[4:]]
    assert listed[0] == ['Image', 'ID', 'Size', 'Last', 'Accessed', '(UTC)',
                         'Hits', 'Reason']
    assert listed[1:3] == [
        [untracked, '1024', 'N/A', 'N/A', 'untracked'],
        [images[0], '6144', '2023-11-14T22:13:20', '0', 'size']]
    assert [row[0] for row in listed[1:]] == [untracked] + images
    assert clients.state(cache) == before

    assert json.loads(succeeded(osc('admin', 'cache', 'prune', '-f',
                                    'json'))) == counts
    assert clients.state(cache) == before.but(images=[images[1]],
                                              rows=[images[1]])
    assert service.runs('prune')[-1]['removed'] == victims


def test_clean_dry_run_lists_what_the_next_clean_removes(osc, filled,
                                                         service):
    rows = table(succeeded(osc('admin', 'cache', 'clean', '--dry-run')))
    filled.check(filled.before)
    assert rows[:4] == [['Field', 'Value'], ['total_files_cleaned', '2'],
                        ['total_bytes_cleaned', '2048'], ['dry_run', 'True']]
    listed = [row[1].split() for row in rows[4:]]
    planned = ['invalid/' + filled.invalid, 'incomplete/' + filled.stalled]
    assert listed == [['Path', 'Size', 'Reason'],
                      [planned[0], '1024', 'invalid'],
                      [planned[1], '1024', 'stalled']]

    assert json.loads(succeeded(osc('admin', 'cache', 'clean', '-f',
                                    'json'))) == {
        'total_files_cleaned': 2, 'total_bytes_cleaned': 2048}
    filled.check(filled.after('clean'))
    assert service.runs('clean')[-1]['removed'] == planned


def test_pin_list_unpin_and_a_pinned_image_survives_prune(osc, filled, pins):
    oldest = filled.cached[0]      # the first a prune would evict
    pin = json.loads(succeeded(osc('admin', 'cache', 'pin', oldest,
                                   '--note', 'golden image', '-f', 'json')))
    assert pin == {'image_id': oldest, 'pinned_at': pin['pinned_at'],
                   'note': 'golden image'}
    assert pins() == [pin]
    # Pinned again: the same pin, its time and note kept.
    assert json.loads(succeeded(osc('admin', 'cache', 'pin', oldest, '-f',
                                    'json'))) == pin
    rows = table(succeeded(osc('admin', 'cache', 'pin', 'list')))
    assert rows[0] == ['Image ID', 'Pinned At (UTC)', 'Note']
    assert [(row[0], row[2]) for row in rows[1:]] == [(oldest,
                                                       'golden image')]

    # 18 KiB over a 10 KiB limit: the two least recently used but the
    # pinned one go.
    assert json.loads(succeeded(osc('admin', 'cache', 'prune', '-f',
                                    'json'))) == {
        'total_files_pruned': 2, 'total_bytes_pruned': 12 * clients.KIB}
    filled.check(filled.before.but(images=[oldest], rows=[oldest]))

    assert succeeded(osc('admin', 'cache', 'unpin', oldest)) == ''
    assert pins() == []
    again = osc('admin', 'cache', 'unpin', oldest)
    assert (again.returncode, again.stdout) == (1, ''), again
    assert 'NotFoundException: 404' in again.stderr
    assert 'Image %s is not pinned.' % oldest in again.stderr


@pytest.mark.parametrize('args, message', [
    (['not-an-image-id'], 'Invalid image id'),
    ([UNKNOWN, '--note', 'two\nlines'], 'A pin note must be printable '
     'text of at most 255 characters.')])
def test_pin_refused_by_the_server(osc, pins, args, message):
    result = osc('admin', 'cache', 'pin', *args)
    assert (result.returncode, result.stdout) == (1, ''), result
    assert 'BadRequestException: 400' in result.stderr
    assert message in result.stderr
    assert pins() == []
