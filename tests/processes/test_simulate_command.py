"""The real ``cache-maint-manage simulate`` and ``trace-from-log``.

Neither reads a cache: the config file is empty, or holds [prune] options
alone. Commands that do not depend on each other run side by side.
"""

import csv
import json
import os
import random
import signal
import subprocess

import pytest

from cache_maint import simulation
from cache_maint import targets as evict_targets
from tests.support import processes
from tests.support import running
from tests.support import settings

GIB = 1024 ** 3
MIB = 1024 ** 2

RESULT_KEYS = {'policy', 'cache_size', 'requests', 'bytes_requested',
               'bytes_missed', 'byte_miss_ratio', 'object_miss_ratio',
               'prunes'}
OFFLINE_KEYS = {'cache_size', 'byte_miss_ratio', 'object_miss_ratio'}

# a, b and a again are 100 bytes, c 150: in a cache of 300 bytes, c takes
# the cache over its limit 80 s before the first prune of the timer (one
# every 100 s). Replayed with LRU (see tests/inprocess/test_simulation.py):
# 550 bytes missed in 3 prunes; with the watch (react_delay 5), 800 in 8;
# with the watermarks at 90 and 50, 700 in 3.
CROSSING = [(0, 'a', 100), (10, 'b', 100), (20, 'c', 150), (30, 'a', 100),
            (100, 'b', 100), (150, 'c', 150), (250, 'a', 100),
            (300, 'c', 150)]


def write_trace(path, requests):
    with open(path, 'w', newline='') as out:
        writer = csv.writer(out, lineterminator='\n')
        writer.writerow(simulation.HEADER)
        writer.writerows(requests)
    return str(path)


def random_requests(seed, length=400, images=40):
    """Downloads of images of a few MiB to a few GiB, some popular."""
    rng = random.Random(seed)
    ids = ['%08x-0000-4000-8000-%012x' % (n, rng.getrandbits(48))
           for n in range(images)]
    sizes = {image_id: rng.choice((rng.randint(1, 50) * MIB,
                                   rng.randint(1, 8) * GIB))
             for image_id in ids}
    weights = [1.0 / (rank + 1) for rank in range(images)]
    now = 1767225600
    requests = []
    for _ in range(length):
        now += rng.choice((0, 1, 30, 120, 900, 3600))
        image_id = rng.choices(ids, weights)[0]
        requests.append((now, image_id, sizes[image_id]))
    return requests


def empty_config(tmp_path):
    path = tmp_path / 'empty.conf'
    path.write_text('')
    return str(path)


def run_all(*commands):
    """Run ``cache-maint-manage`` once per ``(config_path, *args)``.

    All at once; their CompletedProcesses, in order.
    """
    started = []
    try:
        for config_path, *args in commands:
            started.append(running.start_manage(config_path, *map(str, args)))
        done = []
        for process in started:
            try:
                stdout, stderr = process.communicate(
                    timeout=processes.DEADLINE * 2)
            except subprocess.TimeoutExpired:
                pytest.fail('%s did not exit within %s s'
                            % (' '.join(process.args),
                               processes.DEADLINE * 2))
            done.append(subprocess.CompletedProcess(
                process.args, process.returncode, stdout, stderr))
        return done
    finally:
        for process in started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.communicate()


def succeeded(result):
    assert result.returncode == 0, result.stderr
    assert 'Traceback' not in result.stderr, result.stderr
    return result


def as_json(result):
    return json.loads(succeeded(result).stdout)


def schedule(prune_interval, watch=False, high_watermark=100,
             low_watermark=100):
    """The command's schedule under an empty config file, but these."""
    return simulation.Schedule(
        prune_interval=prune_interval,
        targets=evict_targets.Targets(max_size=0,
                                      high_watermark=high_watermark,
                                      low_watermark=low_watermark),
        watch=watch, react_delay=2.0)


def in_process(trace_path, cache_size, policy, plan):
    with open(trace_path, newline='', encoding='utf-8') as lines:
        trace = simulation.read_trace(lines, name=trace_path)
    return simulation.replay(trace, cache_size, policy, plan)


def test_json_has_a_result_per_size_and_policy_as_replayed_in_process(
        tmp_path):
    trace_path = write_trace(tmp_path / 'trace.csv', random_requests(1))
    answer = as_json(running.manage(
        empty_config(tmp_path), 'simulate', '--trace', trace_path,
        '--cache-size', '10%,2G', '--policy', 'lru,adaptive',
        '--prune-interval', '600', '--format', 'json'))
    with open(trace_path, newline='') as lines:
        trace = simulation.read_trace(lines)
    sizes = [int(trace.unique_bytes() * 0.1), 2 * GIB]
    assert set(answer) == {'results', 'offline'}
    assert [(r['cache_size'], r['policy']) for r in answer['results']] == [
        (sizes[0], 'lru'), (sizes[0], 'adaptive'),
        (sizes[1], 'lru'), (sizes[1], 'adaptive')]
    for result in answer['results']:
        assert set(result) == RESULT_KEYS
        assert result['requests'] == 400
        assert result == in_process(trace_path, result['cache_size'],
                                    result['policy'],
                                    schedule(600)).to_dict()
    lru = answer['results'][0]
    assert 0 < lru['bytes_missed'] < lru['bytes_requested']
    assert lru['prunes'] > 0
    assert [o['cache_size'] for o in answer['offline']] == sizes
    for offline in answer['offline']:
        assert set(offline) == OFFLINE_KEYS
        reference = in_process(trace_path, offline['cache_size'],
                               simulation.OFFLINE, schedule(600))
        assert offline['byte_miss_ratio'] == reference.byte_miss_ratio
        assert offline['object_miss_ratio'] == reference.object_miss_ratio


def test_table_has_a_column_per_policy_and_a_row_per_size(tmp_path):
    trace_path = write_trace(tmp_path / 'trace.csv', random_requests(2))
    result = succeeded(running.manage(
        empty_config(tmp_path), 'simulate', '--trace', trace_path,
        '--cache-size', '10%, 50%,2G', '--policy', 'lfuda,lru',
        '--prune-interval', '900'))
    lines = result.stdout.splitlines()
    header = [i for i, line in enumerate(lines)
              if line.split()[-3:] == ['lfuda', 'lru', 'offline']]
    assert len(header) == 1, result.stdout
    first = header[0] + 1
    rows = lines[first:first + 3]
    assert len(rows) == 3
    assert not lines[first + 3][:1].isdigit()
    assert rows[2].split()[:2] == ['2.0', 'GiB']
    # Each cell: byte miss ratio (object miss ratio), as replayed here.
    with open(trace_path, newline='') as trace_lines:
        trace = simulation.read_trace(trace_lines)
    for row, share in zip(rows, (0.1, 0.5)):
        size = int(trace.unique_bytes() * share)
        lru = in_process(trace_path, size, 'lru', schedule(900))
        assert '%.4f (%.4f)' % (lru.byte_miss_ratio,
                                lru.object_miss_ratio) in row, row
        assert '%.1f%%' % (100 * share) in row, row
    assert 'Trace %s: 400 requests' % trace_path in result.stdout


def test_watch_and_watermarks_from_the_flag_and_the_config_file(tmp_path):
    trace_path = write_trace(tmp_path / 'crossing.csv', CROSSING)
    empty = empty_config(tmp_path)
    watching = tmp_path / 'watch.conf'
    watching.write_text('[prune]\nwatch = true\n')
    marks = settings.write_config(
        tmp_path / 'marks.conf',
        {'prune': {'low_watermark': 50, 'high_watermark': 90}})
    command = ('simulate', '--trace', trace_path, '--cache-size', '300',
               '--policy', 'lru', '--prune-interval', '100', '--format',
               'json')
    plain, flag, from_file, watermarks = run_all(
        (empty,) + command,
        (empty,) + command + ('--watch',),
        (str(watching),) + command,
        (marks,) + command)

    def outcome(result):
        lru, = as_json(result)['results']
        return lru['bytes_missed'], lru['prunes']

    assert outcome(plain) == (550, 3)
    # The default react_delay is 2 s, not 5: the watch prunes at 22, 32,
    # 102... rather than 25, 35, 105..., with the same victims.
    assert outcome(flag) == (800, 8)
    assert as_json(from_file) == as_json(flag)
    assert outcome(watermarks) == (700, 3)
    for result, plan in ((plain, schedule(100)),
                         (flag, schedule(100, watch=True)),
                         (watermarks, schedule(100, high_watermark=90,
                                               low_watermark=50))):
        assert as_json(result)['results'][0] == in_process(
            trace_path, 300, 'lru', plan).to_dict()


def failed_in_one_line(cases):
    """Run ``(command, needles)`` cases at once; each must fail in one line.

    The line holds every needle; yields (command, result, line).
    """
    results = run_all(*[command for command, _ in cases])
    for (command, expected), result in zip(cases, results):
        assert result.returncode != 0, (command, result.stdout)
        assert 'Traceback' not in result.stderr, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, (command, result.stderr)
        for needle in expected:
            assert needle in lines[0], (command, lines[0])
        yield command, result, lines[0]


def test_bad_input_is_one_line_on_stderr(tmp_path):
    good = write_trace(tmp_path / 'good.csv', CROSSING)
    bad = tmp_path / 'bad.csv'
    bad.write_text('timestamp,image_id,size\n0,a,100\n\n1,b,-5\n2,c,3\n')
    config = empty_config(tmp_path)

    def simulate(*args, trace=good):
        return (config, 'simulate', '--trace', trace, '--cache-size', '50%',
                '--prune-interval', '60') + args

    cases = [
        (simulate('--policy', 'lru,bogus'), ["'bogus'", 'lru']),
        (simulate('--cache-size', '5x'), ["'5x'"]),
        (simulate('--cache-size', '10%,0%'), ["'0%'"]),
        (simulate('--cache-size', '150%'), ["'150%'"]),
        (simulate(trace=tmp_path / 'missing.csv'), ['missing.csv']),
        (simulate(trace=bad), ['bad.csv', 'line 4', "'-5'"]),
        (simulate('--prune-interval', '0'), ['--prune-interval 0']),
        (simulate(trace=tmp_path), [str(tmp_path)]),
    ]
    for command, result, line in failed_in_one_line(cases):
        assert line.startswith('cache-maint-manage %s failed: '
                               % command[1]), line
        assert result.stdout == '', (command, result.stdout)


A = '3b2c1a7e-6a4f-4d1e-9c2b-0f1e2d3c4b5a'
B = '9F0E8D7C-1B2A-4C3D-8E4F-5A6B7C8D9E0F'

# 2026-12-07 01:00:00 UTC.
T0 = 1796605200

GLANCE_LOG = [
    # eventlet under oslo.log: logged at 01:00:02.500, 2.345678 s after
    # the download began.
    '2026-12-07 01:00:02.500 1234 INFO eventlet.wsgi.server [None '
    'req-1b8c2f4e-7d3a-4b5c-9e6f-0a1b2c3d4e5f 5f1c2b 7a2e3c - default '
    'default] 10.0.0.5,127.0.0.1 - - [07/Dec/2026 01:00:02] '
    '"GET /v2/images/%s/file HTTP/1.1" 200 1234567 2.345678' % A,
    # Image metadata, not data.
    '2026-12-07 01:00:03.000 1234 INFO eventlet.wsgi.server [None req-2 '
    '- - - - -] 10.0.0.5 - - [07/Dec/2026 01:00:03] '
    '"GET /v2/images/%s HTTP/1.1" 200 1500 0.010000' % A,
    # uWSGI: the start of the request, 01:05:00.
    '[pid: 1234|app: 0|req: 5/10] 10.0.0.6 () {40 vars in 700 bytes} '
    '[Mon Dec  7 01:05:00 2026] GET /v2/images/%s/file => generated '
    '7654321 bytes in 2345 msecs (HTTP/1.1 200) 6 headers in 250 bytes '
    '(1 switches on core 0)' % B,
    # Apache combined, behind devstack's /image: 01:10:00 UTC.
    '10.0.0.7 - - [07/Dec/2026:02:10:00 +0100] "GET /image/v2/images/%s/'
    'file HTTP/1.1" 200 1234000 "-" "python-glanceclient/4.6.0"' % A,
    # Not found: no image moved.
    '10.0.0.7 - - [07/Dec/2026:02:11:00 +0100] "GET /image/v2/images/%s/'
    'file HTTP/1.1" 404 120 "-" "python-glanceclient/4.6.0"' % B,
    '2026-12-07 01:12:00.000 1234 DEBUG glance.api.v2.images [-] '
    'Something else entirely',
]


def test_trace_from_log_writes_a_trace_that_simulate_replays(tmp_path):
    log = tmp_path / 'glance-api.log'
    log.write_text('\n'.join(GLANCE_LOG) + '\n')
    trace_path = tmp_path / 'trace.csv'
    config = empty_config(tmp_path)
    converted = succeeded(running.manage(
        config, 'trace-from-log', str(log), '--output', str(trace_path)))
    assert converted.stdout == ''
    summary = converted.stderr.strip().splitlines()
    assert len(summary) == 1, converted.stderr
    assert summary[0].startswith('6 lines read, 3 image downloads written; '
                                 'skipped: '), summary
    for reason in ('other_request 1', 'status 1', 'unrecognised 1'):
        assert reason in summary[0]
    with open(trace_path, newline='') as written:
        rows = list(csv.reader(written))
    assert rows[0] == ['timestamp', 'image_id', 'size']
    # Every row of A carries its largest size.
    assert [(float(t), image_id, int(size)) for t, image_id, size
            in rows[1:]] == [
        (pytest.approx(T0 + 0.154, abs=1e-3), A, 1234567),
        (T0 + 300, B.lower(), 7654321),
        (T0 + 600, A, 1234567)]
    answer = as_json(running.manage(
        config, 'simulate', '--trace', str(trace_path), '--cache-size',
        '50%,100%', '--policy', 'lru', '--prune-interval', '60',
        '--format', 'json'))
    half, whole = answer['results']
    assert half['requests'] == whole['requests'] == 3
    assert half['bytes_requested'] == 1234567 * 2 + 7654321
    # Half the unique bytes cannot hold B beside A: LRU evicts both at the
    # prune after B's download, and A misses again.
    assert half['object_miss_ratio'] == 1.0
    assert whole['bytes_missed'] == 1234567 + 7654321
    # The offline reference evicts B, never requested again, and keeps A.
    assert answer['offline'][0]['object_miss_ratio'] == 2 / 3


def test_hostile_input_is_one_line_and_never_hangs(tmp_path):
    good = write_trace(tmp_path / 'good.csv', CROSSING)
    config = empty_config(tmp_path)
    far = write_trace(tmp_path / 'far.csv', [(0, 'a', 1), (1e9, 'b', 1)])
    future = tmp_path / 'future.csv'
    future.write_text('timestamp,image_id,size\n0,a,1\n1e20,b,1\n')
    latin = tmp_path / 'latin.csv'
    latin.write_bytes(b'timestamp,image_id,size\n0,ab\xffc,1\n')
    endless = tmp_path / 'endless.csv'
    endless.write_text('timestamp,image_id,size\n' + '0' * 100000)

    def simulate(*args, trace=good):
        return (config, 'simulate', '--trace', trace, '--cache-size', '50%',
                '--prune-interval', '60') + args

    cases = [
        (simulate('--prune-interval', '1e-9'), ['--prune-interval']),
        (simulate('--prune-interval', 'nan'), ['--prune-interval']),
        (simulate(trace=future), ['line 3', '9999']),
        (simulate(trace=latin), ['line 2', 'UTF-8']),
        (simulate(trace=endless), ['line 2', 'longer than']),
        ((config, 'trace-from-log', good, '--timezone', 'Europe'),
         ['--timezone']),
        ((config, 'trace-from-log', good, '--output', '/dev/full'),
         ['/dev/full']),
    ]
    list(failed_in_one_line(cases))
    # A second's timer over 30 years of silence: one prune runs, and the
    # billion that found nothing to do are counted.
    quiet, = run_all(simulate('--prune-interval', '1', '--format', 'json',
                              trace=far))
    answer = as_json(quiet)
    assert answer['results'][0]['prunes'] == 10 ** 9


def test_every_subcommand_has_help(tmp_path):
    config = empty_config(tmp_path)
    results = run_all(*[(config, command, '--help') for command in (
        'clean', 'prune', 'list', 'pin', 'unpin', 'pins', 'status',
        'db-sync', 'simulate', 'trace-from-log')])
    for result in results:
        succeeded(result)
        assert 'usage:' in result.stdout


def test_trace_from_log_reads_standard_input(tmp_path):
    process = subprocess.Popen(
        [processes.console_script('cache-maint-manage'), '--config-file',
         empty_config(tmp_path), 'trace-from-log', '-'],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(
            '\n'.join(GLANCE_LOG) + '\n', timeout=processes.DEADLINE)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert process.returncode == 0, stderr
    assert stdout.splitlines()[0] == ','.join(simulation.HEADER)
    assert len(stdout.splitlines()) == 4


def test_a_reader_that_stops_early_is_no_error(tmp_path):
    # cache-maint-manage ... | head -1: the rest goes nowhere, quietly.
    # Its JSON (over 100 KB) is more than the pipe holds.
    trace_path = write_trace(tmp_path / 'trace.csv',
                             random_requests(1, length=50))
    config = empty_config(tmp_path)
    command = [processes.console_script('cache-maint-manage'),
               '--config-file', config, 'simulate', '--trace', trace_path,
               '--cache-size', ','.join('%d%%' % n for n in range(1, 101)),
               '--prune-interval', '60', '--format', 'json']
    process = subprocess.Popen(command, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        process.stdout.readline()
        process.stdout.close()
        _stdout, stderr = process.communicate(timeout=processes.DEADLINE)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert 'Traceback' not in stderr, stderr
    assert process.returncode == 0, stderr
