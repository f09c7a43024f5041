"""glance-api request logs turned into a request trace for a cache simulator.

A trace row is ``(timestamp, image_id, size)``: when an image download
started (float seconds since the epoch, UTC), the image's id (lower case)
and its size in bytes; one row per successful ``GET .../v2/images/{id}/file``,
sorted by time (ties keep the order of the input).

Formats recognised
------------------
Each is found anywhere in a line, so a syslog or journald prefix in front of
it does no harm.

eventlet (standalone glance-api, Glance 32 and earlier)
    Glance 33 removed the standalone server (openstack/glance commit
    cea6482150c9, "Remove standalone glance-api WSGI server"); before it,
    ``glance.common.wsgi.Server`` ran ``eventlet.wsgi.server(..., log=
    logging.getLogger("eventlet.wsgi.server"))`` with eventlet's default
    ``log_format``, ``DEFAULT_LOG_FORMAT`` in ``eventlet/wsgi.py``
    (0.41.3)::

        %(client_ip)s - - [%(date_time)s] "%(request_line)s"
        %(status_code)s %(body_length)s %(wall_seconds).6f

    ``client_ip`` is ``X-Forwarded-For,peer`` when that header is present,
    ``date_time`` is ``BaseHTTPRequestHandler.log_date_time_string()``
    (local time, ``07/Dec/2026 01:00:02``, English month names), and the
    line is logged once the response has ended: ``wall_seconds`` is how long
    it took. Through oslo.log the line gets its default prefix,
    ``%(asctime)s.%(msecs)03d %(process)d %(levelname)s %(name)s [...]``
    with ``log_date_format`` ``%Y-%m-%d %H:%M:%S`` (local time)::

        2026-12-07 01:00:02.500 1234 INFO eventlet.wsgi.server [None
        req-1b8c... - - - - -] 10.0.0.5,127.0.0.1 - - [07/Dec/2026
        01:00:02] "GET /v2/images/3b2c...4b5a/file HTTP/1.1" 200 1234567
        2.345678

    (one line in the log). Caveat: eventlet's ``body_length`` counts every
    byte it wrote, the status line and headers included (``length[0] +=
    sum(map(len, towrite))`` in ``handle_one_response``), so these sizes
    are a few hundred bytes above the image's.

uWSGI (Glance 33 runs only under a WSGI server, as
``glance.wsgi.api:application``; devstack runs it under uWSGI behind
Apache's ``ProxyPass /image``)
    uWSGI's default request logger, ``uwsgi_logit_simple()`` in
    ``core/logging.c`` (uWSGI 2.0.31)::

        [pid: %d|app: %d|req: %d/%llu] %s (%s) {%d vars in %d bytes} [%.24s]
        %s %s => generated %llu bytes in %llu msecs%s(%s %d) %d headers in
        %llu bytes (%d switches on core %d)

    e.g. (one line) ``[pid: 1234|app: 0|req: 5/10] 10.0.0.5 () {40 vars in
    700 bytes} [Mon Dec  7 01:00:00 2026] GET /v2/images/3b2c...4b5a/file
    => generated 1234567 bytes in 2345 msecs (HTTP/1.1 200) 6 headers in
    250 bytes (1 switches on core 0)``. The date is ``ctime()`` of
    ``start_of_request_in_sec``: local time, whole seconds, and the START
    of the request, so nothing is subtracted from it. ``generated`` is the
    body only (headers are counted apart), ``msecs`` is ``micros`` under
    ``--log-micros``, and ``via sendfile()`` (or ``via route()``,
    ``via offload()``) may stand before the parenthesis.

Combined / common log format (httpd with mod_wsgi or mod_proxy, nginx)
    ``%h %l %u %t "%r" %>s %b`` (combined adds ``"%{Referer}i"
    "%{User-agent}i"``; httpd's mod_log_config and nginx's ``combined``
    ``log_format`` alike)::

        10.0.0.5 - - [07/Dec/2026:02:00:00 +0100] "GET /image/v2/images/
        3b2c...4b5a/file HTTP/1.1" 200 1234567 "-" "python-glanceclient"

    ``%b`` / ``$body_bytes_sent`` are body bytes, ``-`` for none; the
    offset in the date is honoured. httpd's ``%t`` is when the request was
    received; nginx's ``$time_local`` is when the line was written, and
    neither default format logs the time taken, so nginx times are end
    times that cannot be corrected.

Rules
-----
* Only ``GET`` of ``/v2/images/{id}/file``, after any prefix (devstack's
  ``/image``) and before any query string; ids are hyphenated UUIDs in any
  case, lower-cased. ``HEAD``, uploads, metadata and ``/v2/cache/{id}`` are
  other requests.
* Only status 200: 206 is a range, a part of the image; 204, 3xx, 4xx and
  5xx moved no image. A size of 0 or ``-`` moved none either.
* Every row of an image carries the LARGEST size logged for it anywhere in
  the input: an image's size never changes, but a download the client
  abandons is still logged with status 200 (the status went out before the
  body) and with only the bytes sent, so the largest is the nearest to the
  image's real size, which is what a cache stores.
* Times without a zone are in ``tz`` (UTC by default). oslo.log's prefix is
  preferred where present: it has milliseconds. A time written when the
  response ended (eventlet's own, oslo.log's) is moved back by the elapsed
  time the line logs, to when the download began.
* A line that yields no row is counted in ``skipped`` by reason, never
  raised: ``read == len(requests) + sum(skipped.values())``. Lines over
  ``MAX_LINE`` characters are not parsed at all.
"""

import collections
import dataclasses
import datetime
import gzip
import io
import operator
import re
import sys
import zlib

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

#: Longest line parsed, in characters (bytes, as ``open_log`` reads them).
#: Real request lines are far shorter: eventlet refuses request lines over
#: 8 KiB, and uWSGI cuts its log lines at 4 KiB.
MAX_LINE = 64 * 1024

#: How ``open_log`` tells a gzip file from a plain one (RFC 1952).
GZIP_MAGIC = b'\x1f\x8b'

# Reasons a line is skipped, the keys of ``Conversion.skipped``.
TOO_LONG = 'too_long'          # over MAX_LINE, not parsed
UNRECOGNISED = 'unrecognised'  # no request log line of a known format
OTHER_REQUEST = 'other_request'  # not a GET of an image's data
STATUS = 'status'              # not 200
EMPTY = 'empty'                # no body bytes logged
# A date that is no date (month 13, ...), or a start before 1970 or after
# the year 9999.
BAD_TIME = 'bad_time'
BAD_SIZE = 'bad_size'          # more bytes than any file can hold

#: The last second of the year 9999, and the most bytes a trace may hold:
#: what cache_maint.simulation accepts.
LAST_TIME = 253402300799
LAST_SIZE = 2 ** 63 - 1

_MONTHS = {name: number for number, name in enumerate(
    ('Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun',
     'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'), start=1)}

# Sizes and times are bounded in digits so that a hostile line cannot make
# an absurd number (and Python ints have no bound of their own).
_SIZE = r'(?P<size>\d{1,19}|-)'

# A quoted request line; httpd escapes a quote inside it as \".
_QUOTED_REQUEST = r'"(?P<request>(?:[^"\\]|\\.)*)"'

# oslo.log's default prefix: asctime (log_date_format) and .msecs, local.
_OSLO = re.compile(
    r'(?P<Y>\d{4})-(?P<m>\d\d)-(?P<d>\d\d) '
    r'(?P<H>\d\d):(?P<M>\d\d):(?P<S>\d\d)\.(?P<ms>\d{3}) ')

# eventlet's DEFAULT_LOG_FORMAT. The date has a space, httpd's a colon.
_EVENTLET = re.compile(
    r'(?:^|\s)\S+ - - '
    r'\[(?P<d>\d\d)/(?P<b>[A-Za-z]{3})/(?P<Y>\d{4}) '
    r'(?P<H>\d\d):(?P<M>\d\d):(?P<S>\d\d)\] '
    + _QUOTED_REQUEST + r' (?P<status>\d{3}) ' + _SIZE +
    r'(?: (?P<elapsed>\d{1,10}\.\d{1,9}))?(?!\S)')

# uWSGI's default request log line (uwsgi_logit_simple). app and req are
# -1 before an application is loaded; the protocol may be empty.
_UWSGI = re.compile(
    r'\[pid: \d+\|app: -?\d+\|req: -?\d+/\d+\] \S* \([^)]*\) '
    r'\{\d+ vars in \d+ bytes\} '
    r'\[[A-Za-z]{3} (?P<b>[A-Za-z]{3}) (?P<d>[ \d]\d) '
    r'(?P<H>\d\d):(?P<M>\d\d):(?P<S>\d\d) (?P<Y>\d{4})\] '
    r'(?P<method>\S+) (?P<target>\S+) '
    r'=> generated (?P<size>\d{1,19}) bytes '
    r'in (?P<elapsed>\d{1,19}) (?P<unit>msecs|micros) '
    r'(?:via \w+\(\) )?\((?:\S* )?(?P<status>\d{3})\)')

# %h %l %u %t "%r" %>s %b, whatever follows (combined's referer and agent).
_COMBINED = re.compile(
    r'(?:^|\s)\S+ \S+ \S+ '
    r'\[(?P<d>\d\d)/(?P<b>[A-Za-z]{3})/(?P<Y>\d{4}):'
    r'(?P<H>\d\d):(?P<M>\d\d):(?P<S>\d\d) '
    r'(?P<sign>[+-])(?P<zh>\d\d)(?P<zm>\d\d)\] '
    + _QUOTED_REQUEST + r' (?P<status>\d{3}) ' + _SIZE + r'(?!\S)')

# "GET /v2/images/{id}/file HTTP/1.1"; HTTP/0.9 sent no version.
_REQUEST_LINE = re.compile(
    r'(?P<method>[A-Za-z]+) (?P<target>\S+)(?: HTTP/\d(?:\.\d)?)?')

# Anything up to a last /v2/images/{id}/file (a mount prefix such as
# devstack's /image, or an absolute URI's scheme and host), then an optional
# query string.
_IMAGE_DATA = re.compile(
    r'[^?#]*/v2/images/(?P<id>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-'
    r'[0-9a-fA-F]{4}-[0-9a-fA-F]{12})/file(?:\?[^#]*)?')


@dataclasses.dataclass
class Conversion:
    """What ``convert`` made of a log."""

    #: ``(timestamp, image_id, size)`` rows, sorted by timestamp.
    requests: list
    #: Lines read.
    read: int
    #: Lines that made no row, counted by reason (``TOO_LONG``, ...).
    skipped: dict


class _Skip(Exception):
    """A line that makes no row; ``reason`` is what it is counted under."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def convert(lines, tz=None):
    """The download trace of ``lines`` (str, or bytes decoded as UTF-8).

    ``tz`` (a ``datetime.tzinfo``) is the zone of times logged without one;
    UTC when None.
    """
    zone = tz or datetime.timezone.utc
    rows = []
    skipped = collections.Counter()
    read = 0
    for line in lines:
        read += 1
        try:
            rows.append(_row(line, zone))
        except _Skip as skip:
            skipped[skip.reason] += 1
    return Conversion(requests=_sorted(_largest_sizes(rows)), read=read,
                      skipped=dict(skipped))


def open_log(*paths):
    """Yield the lines of the files at ``paths``, in turn, as text.

    A file starting with gzip's magic bytes is decompressed, whatever its
    name. Bytes that are not UTF-8 become U+FFFD. A line longer than
    ``MAX_LINE`` bytes is never held whole: its first ``MAX_LINE + 2``
    bytes are yielded, one character a byte, so that ``convert`` counts it
    as too long. A gzip stream that is cut short or corrupt (a log rotated
    while written) ends its file with a warning, keeping the lines before.
    """
    for path in paths:
        if path == '-':
            yield from _decompressed(sys.stdin.buffer, 'standard input')
            continue
        with open(path, 'rb') as raw:
            yield from _decompressed(raw, path)


def _decompressed(raw, path):
    """The lines of a binary stream, gzip or not; a pipe will do."""
    raw = raw if hasattr(raw, 'peek') else io.BufferedReader(raw)
    if raw.peek(len(GZIP_MAGIC))[:len(GZIP_MAGIC)] == GZIP_MAGIC:
        with gzip.GzipFile(fileobj=raw) as unzipped:
            yield from _lines(unzipped, path)
    else:
        yield from _lines(raw, path)


def _lines(stream, path):
    limit = MAX_LINE + 2  # room for the line's own '\r\n'
    try:
        while True:
            line = stream.readline(limit)
            if not line:
                return
            if len(line) == limit and not line.endswith(b'\n'):
                _drain_line(stream, limit)
                yield line.decode('latin-1')
            else:
                yield line.decode('utf-8', 'replace')
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        LOG.warning('%s: compressed data cut short or corrupt (%s); '
                    'the rest of the file is ignored', path, error)


def _drain_line(stream, chunk):
    """Read to the end of the current line, a chunk at a time."""
    while True:
        rest = stream.readline(chunk)
        if not rest or rest.endswith(b'\n'):
            return


def _row(line, zone):
    """``(start, image_id, size)`` of one log line, or ``_Skip``."""
    if isinstance(line, bytes):
        line = line.decode('utf-8', 'replace')
    line = line.rstrip('\r\n')
    if len(line) > MAX_LINE:
        raise _Skip(TOO_LONG)
    request = _parse(line)
    image_id = _image_id(request['method'], request['target'])
    if request['status'] != '200':
        raise _Skip(STATUS)
    size = 0 if request['size'] == '-' else int(request['size'])
    if not size:
        raise _Skip(EMPTY)
    if size > LAST_SIZE:
        raise _Skip(BAD_SIZE)
    start = _start(line, request, zone)
    if not 0 <= start <= LAST_TIME:
        raise _Skip(BAD_TIME)
    return start, image_id, size


def _parse(line):
    """The request a line logs, as a dict of its fields, or ``_Skip``.

    The fields: ``method``, ``target``, ``status`` and ``size`` (text),
    ``when`` (the line's own date match), ``at_end`` (whether that date is
    the end of the request) and ``elapsed`` (seconds, or 0 when unlogged).
    """
    match = _UWSGI.search(line)
    if match:
        unit = 1e3 if match['unit'] == 'msecs' else 1e6
        return dict(method=match['method'], target=match['target'],
                    status=match['status'], size=match['size'], when=match,
                    at_end=False, elapsed=int(match['elapsed']) / unit)
    for pattern in (_EVENTLET, _COMBINED):
        match = pattern.search(line)
        if match:
            break
    else:
        raise _Skip(UNRECOGNISED)
    request_line = _REQUEST_LINE.fullmatch(match['request'])
    if not request_line:
        raise _Skip(OTHER_REQUEST)
    is_eventlet = pattern is _EVENTLET
    return dict(method=request_line['method'],
                target=request_line['target'],
                status=match['status'], size=match['size'], when=match,
                # httpd's %t is when the request came; nginx's the end,
                # but with no time taken logged there is nothing to do.
                at_end=is_eventlet,
                elapsed=float(match['elapsed'] or 0) if is_eventlet else 0)


def _image_id(method, target):
    """The image whose data ``method target`` downloads, or ``_Skip``."""
    # Methods are case-sensitive (RFC 9110 9.1): "get" is not a GET.
    match = _IMAGE_DATA.fullmatch(target) if method == 'GET' else None
    if not match:
        raise _Skip(OTHER_REQUEST)
    return match['id'].lower()


def _start(line, request, zone):
    """When the request began, as seconds since the epoch."""
    try:
        prefix = _OSLO.match(line)
        if prefix:
            # Written by the logger as the line was: at the end.
            ended = _timestamp(prefix, zone) + int(prefix['ms']) / 1e3
            return ended - request['elapsed']
        when = _timestamp(request['when'], zone)
        return when - request['elapsed'] if request['at_end'] else when
    except (KeyError, ValueError, OverflowError):
        raise _Skip(BAD_TIME)


def _timestamp(match, zone):
    """Seconds since the epoch of a date match's Y, m or b, d, H, M, S."""
    month = (int(match['m']) if 'm' in match.groupdict()
             else _MONTHS[match['b'].title()])
    naive = datetime.datetime(int(match['Y']), month, int(match['d']),
                              int(match['H']), int(match['M']),
                              int(match['S']))
    if 'sign' in match.groupdict():
        offset = datetime.timedelta(hours=int(match['zh']),
                                    minutes=int(match['zm']))
        zone = datetime.timezone(-offset if match['sign'] == '-' else offset)
    return _aware(naive, zone).timestamp()


def _aware(naive, zone):
    # pytz zones must localize: replace() would give them their LMT offset.
    localize = getattr(zone, 'localize', None)
    return localize(naive) if localize else naive.replace(tzinfo=zone)


def _largest_sizes(rows):
    """The rows, each with the largest size seen for its image."""
    largest = {}
    for _when, image_id, size in rows:
        largest[image_id] = max(size, largest.get(image_id, 0))
    return [(when, image_id, largest[image_id])
            for when, image_id, _size in rows]


def _sorted(rows):
    # sorted() is stable: rows of one time keep the order they were read in.
    return sorted(rows, key=operator.itemgetter(0))
