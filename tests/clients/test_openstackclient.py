"""python-openstackclient 10.5: ``cached image ...``, and this package's
``cache clean`` and ``cache prune`` plugin commands.

Each ``openstack`` run costs about 2 s of start-up, so the runs are few.
"""

import http.server
import json
import threading

import pytest

from tests import clients

UNKNOWN = '0b9ab4e6-1d0d-4a7c-9d47-3a39d47a5c1f'


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
    for command in ('cache clean', 'cache prune', 'cached image list',
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
    """Glance 33's answers to discovery and to POST /v2/cache/clean."""

    def _send(self, status, body, content_type):
        self.send_response(status)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        href = 'http://127.0.0.1:%d/v2/' % self.server.server_port
        body = json.dumps({'versions': [{'id': 'v2.18', 'status': 'CURRENT',
                                         'links': [{'rel': 'self',
                                                    'href': href}]}]})
        self._send(300 if self.path == '/' else 200, body.encode(),
                   'application/json')

    def do_POST(self):
        # webob's default: 200, text/html, empty body.
        self._send(200, b'', 'text/html; charset=UTF-8')

    def log_message(self, *args):
        pass


def test_cache_clean_against_glance_shows_nothing(osc):
    glance = http.server.ThreadingHTTPServer(('127.0.0.1', 0), GlanceClean)
    thread = threading.Thread(target=glance.serve_forever)
    thread.start()
    try:
        url = 'http://127.0.0.1:%d' % glance.server_port
        result = osc('admin', 'cache', 'clean', '-f', 'json', endpoint=url)
    finally:
        glance.shutdown()
        thread.join()
    assert json.loads(succeeded(result)) == {}


@pytest.mark.parametrize('who, command, message', [
    ('demo', 'cached image list', 'You are not authorized to complete '
     'cache_list action.'),
    ('demo', 'cached image clear', 'Failed to clear image cache'),
    ('demo', 'cache clean', 'ForbiddenException: 403'),
    ('demo', 'cache prune', 'ForbiddenException: 403'),
    ('none', 'cached image list', 'You are not authorized to complete '
     'cache_list action.'),
    ('none', 'cache prune', 'ForbiddenException: 403')])
def test_non_admin_is_refused(osc, filled, who, command, message):
    result = osc(who, *command.split())
    assert (result.returncode, result.stdout) == (1, ''), result
    assert message in result.stderr
    filled.check(filled.before)
