"""``cache-maint-manage``: run clean or prune once, list, pin, show status.

The commands run the very task functions the service runs, under the same
locks, so they are safe beside a running cache-maint or glance-api: a run
in progress elsewhere is waited for, never overlapped. Their runs go into
the same record of runs as the service's, and their pins are the service's
pins (both live in the cache's state, ``cache_maint.state``).
"""

import datetime
import json
import os
import signal
import sys
import threading

from oslo_config import cfg
from oslo_log import log as logging

from cache_maint import cache as cm_cache
from cache_maint.cmd import common
from cache_maint.cmd import simulate
from cache_maint.conf import sources
from cache_maint import exception
from cache_maint import images
from cache_maint import locks
from cache_maint import pins
from cache_maint import runs
from cache_maint import scratch
from cache_maint import shared_db
from cache_maint import startup
from cache_maint import status

LOG = logging.getLogger(__name__)


def _run(conf, cache, stop, task):
    """Run ``task`` once; print its result, or its whole run record.

    With ``--show-run``, a run that failed is printed too, before the
    command exits with its error: its record says how it ended. With
    ``--dry-run``, nothing is removed: what would be is printed.
    """
    task_runner = runs.TaskRunner(
        conf, cache, stop,
        idle_since=status.service_started_at(cache, conf))
    if conf.command.dry_run:
        _print_preview(conf, task, task_runner.preview(task))
        return None
    try:
        result = getattr(task_runner, task)(wait=conf.command.wait,
                                            trigger='command line')
    except exception.CacheMaintError:
        if conf.command.show_run and task_runner.last_run():
            _print_json(task_runner.last_run().to_dict())
        raise
    _print_json(task_runner.last_run().to_dict() if conf.command.show_run
                else result.to_dict())
    return result


def _clean(conf, cache, stop):
    _run(conf, cache, stop, 'clean')


def _prune(conf, cache, stop):
    result = _run(conf, cache, stop, 'prune')
    if result is not None and result.stopped:
        sys.exit('cache-maint-manage prune: stopped by a signal before it '
                 'finished; the next prune finishes the work')


def _db_sync(conf, cache, stop):
    # Only the database is touched: no cache directory is needed here.
    created = cache.metadata.sync_schema()
    print('Created tables: %s' % ', '.join(created) if created
          else 'The cache tables already exist; nothing to do.')


def _list(conf, cache, stop):
    listing = images.list_cache(cache)
    if conf.command.format == 'json':
        _print_json(listing)
        return
    cached, queued = listing['cached_images'], listing['queued_images']
    print('%-36s  %12s  %6s  %s' % ('image_id', 'size', 'hits',
                                    'last_accessed (UTC)'))
    for record in cached:
        print('%-36s  %12d  %6d  %s' % (
            record['image_id'], record['size'], record['hits'],
            _utc(record['last_accessed'])))
    print('%d cached image(s), %d byte(s); %d queued image(s)%s' % (
        len(cached), sum(r['size'] for r in cached), len(queued),
        ''.join('\n  queued: %s' % image_id for image_id in queued)))


def _print_preview(conf, task, result):
    """A dry run's answer: as the API's JSON, or as a table."""
    answer = result.to_dict()
    if conf.command.format == 'json':
        _print_json(answer)
        return
    if task == 'prune':
        print('%-36s  %12s  %6s  %-19s  %s' % (
            'image_id', 'size', 'hits', 'last_accessed (UTC)', 'reason'))
        for image in answer['images']:
            print('%-36s  %12d  %6s  %-19s  %s' % (
                image['image_id'], image['size'],
                '-' if image['hits'] is None else image['hits'],
                _utc(image['last_accessed']), image['reason']))
        print('Dry run: prune would evict %d image(s), %d byte(s); nothing '
              'was removed' % (answer['total_files_pruned'],
                               answer['total_bytes_pruned']))
    else:
        print('%-48s  %12s  %s' % ('path', 'size', 'reason'))
        for entry in answer['files']:
            print('%-48s  %12d  %s' % (entry['path'], entry['size'],
                                       entry['reason']))
        print('Dry run: clean would remove %d file(s), %d byte(s); nothing '
              'was removed' % (answer['total_files_cleaned'],
                               answer['total_bytes_cleaned']))


def _pin(conf, cache, stop):
    found, created = pins.pin(cache, conf.command.image_id, conf.command.note)
    if conf.command.format == 'json':
        _print_json(found)
    else:
        print('%s image %s' % ('Pinned' if created else 'Already pinned',
                               found['image_id']))


def _unpin(conf, cache, stop):
    pins.unpin(cache, conf.command.image_id)
    print('Unpinned image %s' % conf.command.image_id)


def _pins(conf, cache, stop):
    found = pins.list_pins(cache)
    if conf.command.format == 'json':
        _print_json({'pins': found})
        return
    print('%-36s  %-19s  %s' % ('image_id', 'pinned_at (UTC)', 'note'))
    for pin in found:
        print('%-36s  %-19s  %s' % (pin['image_id'], _utc(pin['pinned_at']),
                                    pin['note']))
    print('%d pinned image(s)' % len(found))


def _status(conf, cache, stop):
    document = status.status(
        conf, cache, runs.TaskRunner(conf, cache, stop),
        service_running=locks.service_running(conf), public=False)
    if conf.command.format == 'json':
        _print_json(document)
        return
    part = document['cache']
    print('Image cache %s (%s driver)'
          % (conf.image_cache_dir, document['driver']))
    if 'error' in part:
        print('  not readable: %s' % part['error'])
    else:
        print('  size:       %d bytes in %d images (limit %d; prune from %d '
              'down to %d)' % (part['size_bytes'], part['images'],
                               part['max_size_bytes'],
                               part['high_watermark_bytes'],
                               part['low_watermark_bytes']))
        print('  eviction:   %s first' % {
            'lru': 'least recently used', 'lfuda': 'least frequently used '
            '(with dynamic ageing)', 'adaptive': 'adaptive (recency weighed '
            'against frequency)'}[part['eviction_policy']])
        for name in ('incomplete', 'invalid', 'queued'):
            print('  %-11s %d files, %d bytes' % (
                name + ':', part[name]['files'], part[name]['bytes']))
        print('  filesystem: %d bytes free of %d' % (
            part['filesystem']['avail_bytes'],
            part['filesystem']['total_bytes']))
    print('  pins:       %s' % ('unknown' if part['pins'] is None
                                else part['pins']))
    running = document['service']['running']
    print('Service: %s; watcher %s' % (
        {True: 'running', False: 'not running', None: 'unknown'}[running],
        'active' if document['watcher']['active'] else 'not active'))
    for task, info in sorted(document['tasks'].items()):
        last = info['last_run']
        print('%s: every %s; last run %s; next run %s' % (
            task.capitalize(), '%d s' % info['interval'] if info['interval']
            else 'never (periodic run disabled)',
            '%s at %s UTC, %s' % (last['trigger'], _utc(last['started_at']),
                                  last['outcome']) if last else 'none',
            _utc(info['next_run']) + ' UTC' if info['next_run'] else 'none'))


def _scratch_cache(conf, cache, stop):
    command = conf.command
    size = None if command.size is None else scratch.parse_size(command.size)
    made = scratch.build(conf, cache, size=size, images=command.images,
                         seed=command.seed)
    made['next_commands'] = [
        'cache-maint-manage %s%s' % (sources.as_arguments(conf), task)
        for task in (
            'status', 'clean --dry-run', 'prune --dry-run', 'prune')]
    if command.format == 'json':
        _print_json(made)
        return
    human = simulate.human_bytes
    over = made['over_limit_bytes']
    print('Scratch cache %s (%s driver, --seed %d makes it again):'
          % (made['image_cache_dir'], made['driver'], made['seed']))
    print('  cached:     %d images recorded, %d bytes; %d files %s, %d '
          'bytes' % (made['images']['files'], made['images']['bytes'],
                     made['untracked']['files'],
                     'without user.hits' if made['driver'] == 'xattr'
                     else 'without a record (as after a crash)',
                     made['untracked']['bytes']))
    print('  size:       %d bytes (%s), %s image_cache_max_size %d (%s)' % (
        made['size_bytes'], human(made['size_bytes']),
        '%d bytes (%s) over' % (over, human(over)) if over
        else 'within', made['max_size_bytes'],
        human(made['max_size_bytes'])))
    print('  incomplete: %d partial downloads, %d of them stalled (older '
          'than image_cache_stall_time, %d s), %d bytes' % (
              made['incomplete']['files'], made['incomplete']['stalled'],
              made['stall_time'], made['incomplete']['bytes']))
    print('  invalid:    %d failed downloads, %d bytes' % (
        made['invalid']['files'], made['invalid']['bytes']))
    print('  queued:     %d images' % made['queued']['files'])
    print('The files are sparse: they take next to no disk space. Try:')
    for line in made['next_commands']:
        print('  ' + line)


#: The exit status of ``db-index --check`` when the index is absent (or
#: half built): not a failure of the command, an answer to script on.
INDEX_ABSENT = 3


def _shared_database(cache):
    """The database all nodes share; refused for other drivers."""
    driver = cache.metadata
    if driver.name != 'centralized_db':
        raise exception.ConfigError(
            'only the centralized_db driver keeps its records in a database '
            'shared by nodes, and [DEFAULT] image_cache_driver is %s'
            % driver.name)
    database = shared_db.SharedDatabase(driver)
    database.check_tables()
    return database


def _nodes(conf, cache, stop):
    found = _shared_database(cache).nodes()
    if conf.command.format == 'json':
        _print_json({'nodes': [node.to_dict() for node in found]})
        return
    print('  %-50s  %9s  %14s  %s' % (
        'node_reference_url', 'records', 'bytes',
        'newest last_accessed (UTC)'))
    for node in found:
        print('%s %-50s  %9d  %14d  %s' % (
            '*' if node.this_node else ' ', node.node_reference_url,
            node.records, node.bytes, _utc(node.newest_last_accessed)))
    mine = [node for node in found if node.this_node]
    print('%d node(s), %d record(s), %d byte(s); %s' % (
        len(found), sum(n.records for n in found),
        sum(n.bytes for n in found),
        '* this node (worker_self_reference_url)' if mine
        else 'this node (%s) has no node_reference row'
        % (cache.metadata.url or 'worker_self_reference_url not set')))


def _db_index(conf, cache, stop):
    database = _shared_database(cache)
    described = shared_db.describe_index()
    if conf.command.create:
        state, created = database.create_index()
        answer = dict(state.to_dict(), created=created)
    else:
        state, created = database.index_state(), False
        answer = state.to_dict()
    if conf.command.format == 'json':
        _print_json(answer)
    elif created:
        print('Created the index %s.' % described)
    elif state.named and state.present:
        print('The index %s exists%s.' % (
            described, '' if conf.command.check else '; nothing to do'))
    elif state.present:
        print('No index is named %s, but %s starts with the same columns '
              '(%s) and serves as well%s.' % (
                  shared_db.INDEX_NAME, ' and '.join(state.equivalents),
                  ', '.join(shared_db.INDEX_COLUMNS),
                  '' if conf.command.check else '; nothing to do'))
    elif state.conflicting:
        print('An index named %s exists on %s (%s), not on the recommended '
              'columns; drop or rename it, then create the index with: '
              'cache-maint-manage %sdb-index --create'
              % (shared_db.INDEX_NAME, shared_db.TABLE,
                 ', '.join(state.columns), sources.as_arguments(conf)))
    else:
        print('The index %s %s%s; create it with: cache-maint-manage '
              '%sdb-index --create' % (
                  described, 'exists but is not valid (a build that did '
                  'not finish)' if state.named else 'does not exist',
                  ' (%s finds each node\'s rows, not in LRU order)'
                  % ' and '.join(state.by_node) if state.by_node else '',
                  sources.as_arguments(conf)))
    if not state.present:
        sys.exit(INDEX_ABSENT)


def _utc(epoch):
    if not epoch:
        return 'N/A'
    moment = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    return moment.strftime('%Y-%m-%d %H:%M:%S')


def _print_json(data):
    print(json.dumps(data, indent=2, sort_keys=True))


COMMANDS = {'clean': _clean, 'prune': _prune, 'list': _list,
            'db-sync': _db_sync, 'pin': _pin, 'unpin': _unpin,
            'pins': _pins, 'status': _status,
            'scratch-cache': _scratch_cache, 'nodes': _nodes,
            'db-index': _db_index}


#: The commands that work on the cache directory; the others need only the
#: state (pins: an image may be pinned before it is cached) or the database
#: (db-sync), and status reports a broken cache rather than refuse to.
#: scratch-cache makes the directory itself, where none is (a refusal
#: writes nothing).
NEEDS_CACHE = ('clean', 'prune', 'list')

#: The commands that read files of their own and no cache at all.
OFFLINE_COMMANDS = {'simulate': simulate.simulate,
                    'trace-from-log': simulate.trace_from_log}


def _stop_on_signals(stop):
    """SIGTERM or SIGINT ends a run at its next safe point, not mid-batch."""
    def request_stop(signum, frame):
        LOG.warning('Signal %d received: stopping at the next safe point',
                    signum)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, request_stop)


def _add_parsers(subparsers):
    for name, helptext in (
            ('clean', 'Remove failed and stalled downloads, once.'),
            ('prune', 'Evict images, in the order of [prune] '
                      'eviction_policy (least recently used first by '
                      'default), until the cache meets its targets, once.')):
        parser = subparsers.add_parser(name, help=helptext)
        parser.add_argument(
            '--wait', type=float, default=None, metavar='SECONDS',
            help='Give up if a run of the same task elsewhere (the service, '
                 'glance-api) still holds the lock after this long; by '
                 'default wait for it.')
        parser.add_argument(
            '--show-run', action='store_true',
            help='Print the run as the service records it (GET '
                 '/v2/cache/runs): when it started and finished, its '
                 'duration, outcome and result, instead of the result '
                 'alone.')
        parser.add_argument(
            '--dry-run', action='store_true',
            help='Remove nothing: print what a run would remove now, and '
                 'why (a real run next, on an unchanged cache, removes '
                 'exactly that).')
        _add_format(parser)
    subparsers.add_parser(
        'db-sync', help="Create Glance's node_reference and cached_images "
                        'tables in a standalone database (centralized_db '
                        "driver); a Glance database is left to "
                        'glance-manage.')
    parser = subparsers.add_parser(
        'nodes', help='List every node of the database the centralized_db '
                      'driver shares with the other nodes: its '
                      'node_reference_url, how many records and bytes it '
                      'has in cached_images, its newest last access. '
                      'Deletes nothing.')
    _add_format(parser)
    parser = subparsers.add_parser(
        'db-index', help='Check whether the index cache-maint recommends on '
                         'a shared cached_images table exists (exit status '
                         '%d if not), or create it online '
                         '(centralized_db driver).' % INDEX_ABSENT)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument('--check', action='store_true',
                        help='Say whether the index exists; exit status %d '
                             'if it does not.' % INDEX_ABSENT)
    action.add_argument('--create', action='store_true',
                        help='Create it, without locking the table (nothing '
                             'to do if it exists).')
    _add_format(parser)
    parser = subparsers.add_parser('list', help='List cached and queued '
                                                'images.')
    _add_format(parser)
    parser = subparsers.add_parser(
        'pin', help='Pin an image: prune never evicts it (it need not be '
                    'cached yet).')
    parser.add_argument('image_id')
    parser.add_argument('--note', default=None,
                        help='Why it is pinned (at most 255 characters).')
    _add_format(parser)
    parser = subparsers.add_parser('unpin', help='Unpin an image.')
    parser.add_argument('image_id')
    parser = subparsers.add_parser('pins', help='List the pinned images.')
    _add_format(parser)
    parser = subparsers.add_parser(
        'status', help="The cache's size, limits and downloads, and the "
                       'last and next run of each task.')
    _add_format(parser)
    parser = subparsers.add_parser(
        'scratch-cache',
        help="Fill a new or empty image_cache_dir with a scratch cache in "
             "the configured driver's format (images, records, partial, "
             'failed and queued downloads), over image_cache_max_size, to '
             'try clean and prune on. Refuses a directory that holds '
             'anything but an empty Glance layout, and a database that '
             'holds any record or another node, or lies outside the '
             'directory.')
    parser.add_argument(
        '--size', default=None, metavar='SIZE',
        help='Bytes of cached images: whole bytes, or a number with a '
             'suffix K, M, G or T (powers of 1024), decimals allowed with '
             'a suffix only (1536M, 1.5G; not 1.5 nor 5.0); at most %s. By '
             'default 1.5 times image_cache_max_size, at most %s.' % (
                 simulate.human_bytes(scratch.MAX_SIZE),
                 simulate.human_bytes(scratch.DEFAULT_SIZE_CAP)))
    parser.add_argument(
        '--images', type=int, default=scratch.DEFAULT_IMAGES, metavar='N',
        help='How many recorded images (1 to %d; default %d), beside %d '
             'untracked files.' % (scratch.MAX_IMAGES, scratch.DEFAULT_IMAGES,
                                   scratch.EXTRAS))
    parser.add_argument(
        '--seed', type=int, default=None, metavar='N',
        help='Seed of the random choices: the same seed makes the same '
             'cache (ids, sizes, hits, ages); by default a random one, '
             'printed.')
    _add_format(parser)
    simulate.add_parsers(subparsers)


def _add_format(parser):
    parser.add_argument('--format', choices=('table', 'json'),
                        default='table', help='Output format.')


command_opt = cfg.SubCommandOpt('command', title='Commands',
                                handler=_add_parsers)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    conf = common.load_config(
        argv, cli_opts=[command_opt], log_to_stderr=True,
        needs_cache=lambda conf: conf.command.name not in OFFLINE_COMMANDS)
    try:
        if conf.command.name in OFFLINE_COMMANDS:
            OFFLINE_COMMANDS[conf.command.name](conf)
        else:
            _on_the_cache(conf)
    except exception.CacheMaintError as e:
        sys.exit('cache-maint-manage %s failed: %s' % (conf.command.name, e))
    except BrokenPipeError:
        # A reader that had enough (| head): not an error of ours. What is
        # left to print goes nowhere, rather than fail at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _on_the_cache(conf):
    """Run a command that works on the cache (or its state or database)."""
    stop = threading.Event()
    _stop_on_signals(stop)
    cache = None
    try:
        cache = cm_cache.Cache.from_conf(conf)
        if getattr(conf.command, 'dry_run', False):
            cache.check()       # a dry run creates nothing
        elif conf.command.name in NEEDS_CACHE:
            cache.setup()
        startup.freeze_start_up_objects()
        COMMANDS[conf.command.name](conf, cache, stop)
    finally:
        if cache is not None:
            cache.close()


if __name__ == '__main__':
    main()
