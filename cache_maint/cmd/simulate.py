"""``cache-maint-manage simulate`` and ``trace-from-log``: try, then prune.

``trace-from-log`` turns glance-api's request log into a trace
(``cache_maint.glance_log``); ``simulate`` replays a trace through prune's
own eviction code at several cache sizes and policies
(``cache_maint.simulation``) and prints the byte and object miss ratios,
beside the offline reference: the miss-ratio curve that says whether a
larger cache, or another ``[prune] eviction_policy``, would spare the
backend downloads. Neither command touches the cache, its records or its
state.
"""

import contextlib
import csv
import json
import sys
import zoneinfo

from cache_maint.conf import prune as prune_opts
from cache_maint import eviction
from cache_maint import exception
from cache_maint import glance_log
from cache_maint import simulation

_PERCENT_OF_UNIQUE = 'percent of the unique bytes of the trace'

#: The longest trace line read, in bytes: a row is far shorter.
MAX_LINE = 4096


def add_parsers(subparsers):
    parser = subparsers.add_parser(
        'simulate',
        help="Replay a request trace (CSV: timestamp,image_id,size) through "
             "prune's eviction code and print the miss ratios of each cache "
             'size and policy, and of the offline reference. Touches '
             'nothing.')
    parser.add_argument('--trace', required=True, metavar='FILE',
                        help='The trace, a CSV file ("-": standard input).')
    parser.add_argument(
        '--cache-size', required=True, metavar='SIZE[,SIZE...]',
        help='Cache sizes to replay: bytes (suffixes K, M, G, T, powers of '
             '1024) or a %s (5%%%%).' % _PERCENT_OF_UNIQUE)
    parser.add_argument(
        '--policy', default=','.join(eviction.NAMES),
        metavar='NAME[,NAME...]',
        help='Eviction policies to replay (%s); all by default.'
             % ', '.join(eviction.NAMES))
    parser.add_argument(
        '--prune-interval', type=float, default=None, metavar='SECONDS',
        help='Seconds of trace time between two prunes; by default '
             '[DEFAULT] cache_prune_interval. 0: none but those of the '
             'watch.')
    parser.add_argument(
        '--watch', action='store_true', default=None,
        help='Also prune react_delay seconds after a miss takes the cache '
             'over its high watermark or image cap, as [prune] watch does '
             'in the service. Off unless given, or set in the file of '
             '--config-file.')
    parser.add_argument('--format', choices=('table', 'json'),
                        default='table', help='Output format.')
    parser = subparsers.add_parser(
        'trace-from-log',
        help="Turn glance-api's request log (eventlet, uWSGI, or Apache "
             'and nginx access logs; gzip too) into a trace for simulate: '
             'one row per successful image download.')
    parser.add_argument('logs', nargs='+', metavar='LOG',
                        help='Log files, plain or gzip; "-": standard input.')
    parser.add_argument('--output', default='-', metavar='FILE',
                        help='Where to write the trace; standard output by '
                             'default.')
    parser.add_argument(
        '--timezone', default=None, metavar='NAME',
        help='The time zone of log times that carry none (such as '
             'Europe/Paris); UTC by default.')


def simulate(conf):
    command = conf.command
    policies = _policies(command.policy)
    # The watch models the service's with --watch or a file that says so;
    # otherwise prunes follow the interval alone, as Glance's would.
    conf.set_default('watch', False, group=prune_opts.GROUP)
    if command.watch:
        conf.set_override('watch', True, group=prune_opts.GROUP)
    schedule = simulation.Schedule.from_conf(conf, command.prune_interval)
    wanted = _cache_sizes(command.cache_size)
    with _opened(command.trace, 'rb') as stream:
        trace = simulation.read_trace(_text_lines(stream, command.trace),
                                      name=command.trace)
    unique = trace.unique_bytes()
    sizes = simulation.sizes_of(trace, wanted)
    answer = simulation.simulate(trace, sizes, policies, schedule)
    if command.format == 'json':
        print(json.dumps(answer, indent=2, sort_keys=True))
        return
    print('Trace %s: %d requests of %d images, %d bytes requested, %d '
          'bytes unique; a prune every %s%s' % (
              command.trace, len(trace), len(set(trace.image_ids)),
              sum(trace.sizes), unique,
              '%g s' % schedule.prune_interval
              if schedule.prune_interval else 'never on the timer',
              ', and on the watch' if schedule.watch else ''))
    _print_table(answer, policies, unique)


def _print_table(answer, policies, unique):
    """The miss-ratio curve: a row per cache size, a column per policy."""
    header = ['cache size', 'of unique'] + policies + [simulation.OFFLINE]
    rows = []
    for offline in answer['offline']:
        size = offline['cache_size']
        found = {result['policy']: result for result in answer['results']
                 if result['cache_size'] == size}
        rows.append([human_bytes(size), '%.1f%%' % (100 * size / unique)
                     if unique else '-'] + [
            _ratios(found[policy]) for policy in policies] + [
            _ratios(offline)])
    widths = [max(len(str(row[i])) for row in [header] + rows)
              for i in range(len(header))]
    for row in [header] + rows:
        print('  '.join(str(cell).rjust(width)
                        for cell, width in zip(row, widths)))
    print('Each cell: byte miss ratio (object miss ratio). offline: the '
          'image requested again furthest ahead goes first, on the same '
          'prunes: the reference a policy that knew the future would reach '
          '(under the size target alone; min_age, max_images and '
          'max_idle_time bind it too).')


def _ratios(result):
    return '%.4f (%.4f)' % (result['byte_miss_ratio'],
                            result['object_miss_ratio'])


def human_bytes(size):
    for unit, scale in (('TiB', 1024 ** 4), ('GiB', 1024 ** 3),
                        ('MiB', 1024 ** 2), ('KiB', 1024)):
        if size >= scale:
            return '%.1f %s' % (size / scale, unit)
    return '%d B' % size


def trace_from_log(conf):
    command = conf.command
    zone = None
    if command.timezone:
        try:
            zone = zoneinfo.ZoneInfo(command.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            raise exception.ConfigError(
                'unknown --timezone %r: give a name of the tz database, such '
                'as Europe/Paris' % command.timezone[:80])
    with _opened(command.output, 'w') as out:
        try:
            conversion = glance_log.convert(
                glance_log.open_log(*command.logs), tz=zone)
        except OSError as e:
            raise exception.ConfigError('cannot read the log: %s' % e)
        writer = csv.writer(out, lineterminator='\n')
        try:
            writer.writerow(simulation.HEADER)
            for timestamp, image_id, size in conversion.requests:
                writer.writerow(('%.3f' % timestamp, image_id, size))
            out.flush()
        except OSError as e:
            raise exception.ConfigError('cannot write the trace to %s: %s'
                                        % (command.output, e.strerror or e))
    sys.stderr.write('%d lines read, %d image downloads written; skipped: '
                     '%s\n' % (conversion.read, len(conversion.requests),
                               ', '.join('%s %d' % item for item in sorted(
                                   conversion.skipped.items()) if item[1])
                               or 'none'))


def _policies(value):
    names = [name.strip() for name in value.split(',')]
    unknown = [name for name in names if name not in eviction.POLICIES]
    if unknown or not names:
        raise exception.ConfigError(
            'unknown --policy %s: choose among %s'
            % (', '.join(map(repr, unknown)) or "''",
               ', '.join(eviction.NAMES)))
    return list(dict.fromkeys(names))


def _cache_sizes(value):
    """Bytes (ints) and shares of the unique bytes (floats)."""
    sizes = []
    for text in value.split(','):
        text = text.strip()
        try:
            if text.endswith('%'):
                percent = float(text[:-1])
                if not 0 < percent <= 100:
                    raise exception.ConfigError(
                        '--cache-size %r: a percent of the unique bytes must '
                        'be over 0 and at most 100' % text)
                sizes.append(percent / 100)
            else:
                sizes.append(prune_opts.Bytes()(text))
        except ValueError:
            raise exception.ConfigError(
                '--cache-size %r is neither bytes (such as 500G) nor a %s '
                '(such as 5%%)' % (text, _PERCENT_OF_UNIQUE))
    return sizes


def _text_lines(stream, name):
    """The lines of a binary ``stream`` as text; TraceError at a bad one.

    Never more than MAX_LINE bytes are read at once: a file with no line
    ends (``/dev/zero``) fails at once rather than fill the memory. Each
    line is decoded on its own, so that an error names its line.
    """
    number = 0
    while True:
        line = stream.readline(MAX_LINE + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE:
            raise simulation.TraceError('%s, line %d: longer than %d bytes'
                                        % (name, number, MAX_LINE))
        try:
            yield line.decode('utf-8')
        except UnicodeDecodeError:
            raise simulation.TraceError('%s, line %d: not UTF-8 text'
                                        % (name, number))


@contextlib.contextmanager
def _opened(path, mode='r'):
    """A file (``rb`` or ``w``), or standard input or output for ``-``."""
    if path == '-':
        yield sys.stdin.buffer if mode == 'rb' else sys.stdout
        return
    try:
        stream = (open(path, mode) if 'b' in mode
                  else open(path, mode, newline='', encoding='utf-8'))
    except OSError as e:
        raise exception.ConfigError('cannot open %s: %s' % (
            path, e.strerror or e))
    try:
        with stream:
            yield stream
    except OSError as e:        # closing flushes what is left to write
        raise exception.ConfigError('cannot %s %s: %s' % (
            'read' if 'r' in mode else 'write', path, e.strerror or e))
