"""glance-api request logs turned into a download trace (glance_log)."""

import calendar
import datetime
import gzip
import random

from cache_maint import glance_log

A = '3b2c1a7e-6a4f-4d1e-9c2b-0f1e2d3c4b5a'
B = '9f0e8d7c-1b2a-4c3d-8e4f-5a6b7c8d9e0f'

OSLO_EVENTLET = (
    '2026-12-07 01:00:02.500 1234 INFO eventlet.wsgi.server '
    '[None req-1b8c2f4e-7d3a-4b5c-9e6f-0a1b2c3d4e5f 5f1c... 7a2e... - '
    'default default] 10.0.0.5,127.0.0.1 - - [07/Dec/2026 01:00:02] '
    '"GET /v2/images/%s/file HTTP/1.1" 200 1234567 2.345678' % A)
EVENTLET = ('10.0.0.5 - - [07/Dec/2026 01:00:02] '
            '"GET /v2/images/%s/file HTTP/1.1" 200 1234567 2.000000' % A)
UWSGI = ('[pid: 1234|app: 0|req: 5/10] 10.0.0.5 () {40 vars in 700 bytes} '
         '[Mon Dec  7 01:00:00 2026] GET /v2/images/%s/file => generated '
         '1234567 bytes in 2345 msecs (HTTP/1.1 200) 6 headers in 250 bytes '
         '(1 switches on core 0)' % A)
COMBINED = ('10.0.0.5 - - [07/Dec/2026:02:00:00 +0100] '
            '"GET /image/v2/images/%s/file HTTP/1.1" 200 1234567 "-" '
            '"python-glanceclient"' % A)


def utc(*fields):
    return calendar.timegm(datetime.datetime(*fields).timetuple())


def eventlet(path, status=200, size=1234567, method='GET', elapsed='0.5',
             date='07/Dec/2026 01:00:02'):
    return '10.0.0.5 - - [%s] "%s %s HTTP/1.1" %s %s %s' % (
        date, method, path, status, size, elapsed)


def uwsgi(path, status=200, size=1234567, method='GET', msecs=2345,
          date='Mon Dec  7 01:00:00 2026'):
    return ('[pid: 1234|app: 0|req: 5/10] 10.0.0.5 () {40 vars in 700 bytes} '
            '[%s] %s %s => generated %s bytes in %s msecs (HTTP/1.1 %s) '
            '6 headers in 250 bytes (1 switches on core 0)'
            % (date, method, path, size, msecs, status))


def combined(path, status=200, size='1234567', method='GET',
             date='07/Dec/2026:01:00:00 +0000'):
    return '10.0.0.5 - - [%s] "%s %s HTTP/1.1" %s %s "-" "curl/8.5.0"' % (
        date, method, path, status, size)


def accounted(conversion):
    """Every line read is a row or a skip."""
    return conversion.read == (len(conversion.requests)
                               + sum(conversion.skipped.values()))


def test_eventlet_under_oslo_log_prefers_the_prefix_less_elapsed():
    result = glance_log.convert([OSLO_EVENTLET])
    [(when, image_id, size)] = result.requests
    assert when == utc(2026, 12, 7, 1, 0, 2) + 0.5 - 2.345678
    assert (image_id, size) == (A, 1234567)
    assert (result.read, result.skipped) == (1, {})


def test_eventlet_alone_uses_its_own_date_less_elapsed():
    [(when, image_id, size)] = glance_log.convert([EVENTLET]).requests
    assert when == utc(2026, 12, 7, 1, 0, 0)
    assert (image_id, size) == (A, 1234567)


def test_uwsgi_logs_the_start_so_nothing_is_subtracted():
    [row] = glance_log.convert([UWSGI]).requests
    assert row == (utc(2026, 12, 7, 1, 0, 0), A, 1234567)


def test_uwsgi_variants():
    lines = [
        # devstack's journal in front, --log-micros, a sendfile
        'Dec 07 01:00:09 node devstack@g-api.service[1234]: '
        + uwsgi('/v2/images/%s/file' % A, msecs='2345000').replace(
            'msecs', 'micros'),
        uwsgi('/v2/images/%s/file' % B).replace(
            'msecs (', 'msecs via sendfile() ('),
        # before an app is loaded uWSGI logs app: -1 and req: -1
        uwsgi('/v2/images/%s/file' % B).replace('app: 0|req: 5',
                                                'app: -1|req: -1'),
    ]
    requests = glance_log.convert(lines).requests
    assert [row[1] for row in requests] == [A, B, B]


def test_combined_honours_its_offset():
    [row] = glance_log.convert([COMBINED]).requests
    assert row == (utc(2026, 12, 7, 1, 0, 0), A, 1234567)


def test_common_log_format_and_vhost_prefix():
    common = combined('/v2/images/%s/file' % A).rsplit(' "-"', 1)[0]
    vhost = 'glance.example.org:443 ' + combined('/v2/images/%s/file' % B)
    requests = glance_log.convert([common, vhost]).requests
    assert [row[1] for row in requests] == [A, B]


def test_url_prefix_query_string_and_absolute_uri():
    lines = [uwsgi('/image/v2/images/%s/file' % A),
             eventlet('/v2/images/%s/file?x=1' % A),
             combined('http://glance:9292/v2/images/%s/file' % A)]
    result = glance_log.convert(lines)
    assert [row[1] for row in result.requests] == [A, A, A]


def test_only_full_downloads():
    path = '/v2/images/%s/file' % A
    lines = [
        eventlet(path, status=206), eventlet(path, status=404),
        uwsgi(path, status=206), uwsgi(path, status=404),
        combined(path, status=204), combined(path, status=302),
        combined(path, status=503),
        eventlet(path, method='HEAD'), uwsgi(path, method='HEAD'),
        combined(path, method='PUT', status=204),
        combined(path, method='get'),
        eventlet('/v2/images/%s' % A),
        uwsgi('/v2/cache/%s' % A),
        combined('/v2/images/%s/files' % A),
        combined('/v2/images/%s/file/x' % A),
        combined('/v2/images/not-an-id/file'),
        combined('/v2/images/%s/file' % A.replace('-', '')),
        combined(path, size='-'), eventlet(path, size=0), uwsgi(path, size=0),
    ]
    result = glance_log.convert(lines)
    assert result.requests == []
    assert result.skipped == {'status': 7, 'other_request': 10, 'empty': 3}
    assert accounted(result)


def test_largest_size_per_image_wins():
    lines = [eventlet('/v2/images/%s/file' % A, size=1000),
             uwsgi('/v2/images/%s/file' % A, size=5000),
             combined('/v2/images/%s/file' % A, size='2000'),
             combined('/v2/images/%s/file' % B, size='7')]
    sizes = {(row[1], row[2]) for row in glance_log.convert(lines).requests}
    assert sizes == {(A, 5000), (B, 7)}


def test_elapsed_time_subtracted():
    line = eventlet('/v2/images/%s/file' % A, elapsed='90.250000')
    [(when, _, _)] = glance_log.convert([line]).requests
    assert when == utc(2026, 12, 7, 1, 0, 2) - 90.25


def test_sorted_by_time_stable_for_ties():
    lines = [combined('/v2/images/%s/file' % A,
                      date='07/Dec/2026:01:00:05 +0000'),
             combined('/v2/images/%s/file' % B,
                      date='07/Dec/2026:01:00:01 +0000'),
             combined('/v2/images/%s/file' % A,
                      date='07/Dec/2026:01:00:01 +0000')]
    requests = glance_log.convert(lines).requests
    assert [row[1] for row in requests] == [B, A, A]
    assert [row[0] for row in requests] == sorted(row[0] for row in requests)


def test_zone_of_local_times():
    paris_winter = datetime.timezone(datetime.timedelta(hours=1))
    for line, moved in ((OSLO_EVENTLET, 3600), (EVENTLET, 3600),
                        (UWSGI, 3600), (COMBINED, 0)):
        [(local, _, _)] = glance_log.convert([line], paris_winter).requests
        [(as_utc, _, _)] = glance_log.convert([line]).requests
        # The combined line carries its own offset; the others move.
        assert local == as_utc - moved, line


def test_upper_case_ids_are_lower_cased():
    lines = [uwsgi('/v2/images/%s/file' % A.upper()),
             combined('/v2/images/%s/file' % A.upper())]
    assert {row[1] for row in glance_log.convert(lines).requests} == {A}


def test_bytes_lines_and_line_endings():
    lines = [(EVENTLET + '\r\n').encode(), UWSGI.encode() + b'\n']
    assert len(glance_log.convert(lines).requests) == 2


def test_garbage_counted_never_raised():
    lines = [
        b'\x00\xff\xfe' * 100, '', '\n', 'not a log line at all',
        '2026-12-07 01:00:00.000 1 INFO glance.api [-] Starting',
        '[pid: 1|app: 0|req: 1/1] garbage',
        # dates that are no dates
        combined('/v2/images/%s/file' % A, date='31/Feb/2026:01:00:00 +0000'),
        combined('/v2/images/%s/file' % A, date='07/Foo/2026:01:00:00 +0000'),
        combined('/v2/images/%s/file' % A, date='07/Dec/2026:01:00:00 +9999'),
        eventlet('/v2/images/%s/file' % A, date='07/Dec/0000 01:00:02'),
        uwsgi('/v2/images/%s/file' % A, date='Mon Dec 99 01:00:00 2026'),
        # a request line with quotes and spaces of its own
        '10.0.0.5 - - [07/Dec/2026:01:00:00 +0000] "GET /\\" x y" 200 5',
        'x' * (1024 * 1024),
        ('%s ' % UWSGI) * 20000,
    ]
    result = glance_log.convert(lines)
    assert result.requests == []
    assert result.read == len(lines)
    assert result.skipped == {'unrecognised': 6, 'bad_time': 5,
                              'other_request': 1, 'too_long': 2}


def test_random_lines_never_raise():
    pieces = [OSLO_EVENTLET, EVENTLET, UWSGI, COMBINED, '"', '\\', '[', ']',
              ' ', '\x00', '\ufffd', '/v2/images/', A, '/file', '200', '-']
    chooser = random.Random(42)
    lines = []
    for _ in range(2000):
        line = ''.join(chooser.choice(pieces)
                       for _ in range(chooser.randint(0, 12)))
        cut = chooser.randint(0, len(line))
        lines.append(line[:cut] + line[cut + 1:])
    assert accounted(glance_log.convert(lines))


def test_open_log_reads_gzip_and_plain_files(tmp_path):
    zipped = tmp_path / 'glance-api.log.2.gz'
    with gzip.open(zipped, 'wb') as f:
        f.write((UWSGI + '\n' + EVENTLET + '\n').encode())
    plain = tmp_path / 'glance-api.log.1'
    plain.write_bytes(b'\xff\xfe garbage\n' + COMBINED.encode() + b'\r\n')
    renamed = tmp_path / 'glance-api.log'  # gzip, by its bytes alone
    renamed.write_bytes(gzip.compress(OSLO_EVENTLET.encode()))
    result = glance_log.convert(glance_log.open_log(zipped, plain, renamed))
    assert result.read == 5
    assert result.skipped == {'unrecognised': 1}
    assert len(result.requests) == 4


def test_open_log_skips_a_long_line_without_holding_it(tmp_path):
    log = tmp_path / 'glance-api.log'
    log.write_bytes(b'\xc3\xa9' * (1024 * 1024) + b'\n'
                    + (UWSGI + '\n').encode()
                    + b'x' * glance_log.MAX_LINE + b'\r\n'
                    + b'y' * (glance_log.MAX_LINE + 1))
    lines = list(glance_log.open_log(log))
    assert max(len(line) for line in lines) <= glance_log.MAX_LINE + 2
    result = glance_log.convert(lines)
    assert result.read == 4
    assert result.skipped == {'too_long': 2, 'unrecognised': 1}
    assert len(result.requests) == 1


def test_open_log_stops_at_a_truncated_gzip(tmp_path):
    log = tmp_path / 'glance-api.log.gz'
    data = gzip.compress(((UWSGI + '\n') * 1000).encode())
    log.write_bytes(data[:len(data) // 2])
    result = glance_log.convert(glance_log.open_log(log))
    assert 0 < len(result.requests) < 1000
    assert accounted(result)
