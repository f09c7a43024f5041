"""``cache-maint-manage``: run clean or prune once, or list the cache.

The commands run the very task functions the service runs, under the same
locks, so they are safe beside a running cache-maint or glance-api: a run
in progress elsewhere is waited for, never overlapped.
"""

import datetime
import json
import signal
import sys
import threading

from oslo_config import cfg
from oslo_log import log as logging

from cache_maint import cache as cm_cache
from cache_maint.cmd import common
from cache_maint import exception
from cache_maint import images
from cache_maint import runs
from cache_maint import startup

LOG = logging.getLogger(__name__)


def _run(conf, cache, stop, task):
    """Run ``task`` once; print its result, or its whole run record.

    With ``--show-run``, a run that failed is printed too, before the
    command exits with its error: its record says how it ended.
    """
    task_runner = runs.TaskRunner(conf, cache, stop)
    try:
        result = getattr(task_runner, task)(wait=conf.command.wait,
                                            trigger='command line')
    except exception.CacheMaintError:
        if conf.command.show_run and task_runner.runs():
            _print_json(task_runner.runs()[-1].to_dict())
        raise
    _print_json(task_runner.runs()[-1].to_dict() if conf.command.show_run
                else result.to_dict())
    return result


def _clean(conf, cache, stop):
    _run(conf, cache, stop, 'clean')


def _prune(conf, cache, stop):
    result = _run(conf, cache, stop, 'prune')
    if result.stopped:
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


def _utc(epoch):
    if not epoch:
        return 'N/A'
    moment = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    return moment.strftime('%Y-%m-%d %H:%M:%S')


def _print_json(data):
    print(json.dumps(data, indent=2, sort_keys=True))


COMMANDS = {'clean': _clean, 'prune': _prune, 'list': _list,
            'db-sync': _db_sync}


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
            ('prune', 'Evict least recently used images down to '
                      'image_cache_max_size, once.')):
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
    subparsers.add_parser(
        'db-sync', help="Create Glance's node_reference and cached_images "
                        'tables in a standalone database (centralized_db '
                        "driver); a Glance database is left to "
                        'glance-manage.')
    parser = subparsers.add_parser('list', help='List cached and queued '
                                                'images.')
    parser.add_argument('--format', choices=('table', 'json'),
                        default='table', help='Output format.')


command_opt = cfg.SubCommandOpt('command', title='Commands',
                                handler=_add_parsers)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    conf = common.load_config(argv, cli_opts=[command_opt],
                              log_to_stderr=True)
    stop = threading.Event()
    _stop_on_signals(stop)
    cache = None
    try:
        cache = cm_cache.Cache.from_conf(conf)
        if conf.command.name != 'db-sync':
            cache.setup()
        startup.freeze_start_up_objects()
        COMMANDS[conf.command.name](conf, cache, stop)
    except exception.CacheMaintError as e:
        sys.exit('cache-maint-manage %s failed: %s' % (conf.command.name, e))
    finally:
        if cache is not None:
            cache.close()


if __name__ == '__main__':
    main()
