"""The database of centralized_db goes away mid-run and comes back (item 3).

The shared database servers stay up: a TCP proxy between cache-maint and
the server is cut (every connection closed, new ones refused) at the
moment the periodic prune sends its first DELETE of records, the moment a
victim's record and its file are about to be parted (records go first,
then files). The link is restored later; the tests' own view of the
database goes to the server directly.
"""

import re
import time

import pytest

from tests.faults import conftest as faults
from tests.support import processes

#: A failed run's line in the log: "<Task> run (<trigger>) failed...".
FAILED_RUN = re.compile(r'\b(Clean|Prune) run \((\w+)\) failed')


def _failed(daemon, task):
    return [run for run in daemon.runs(task) if run['outcome'] == 'failed']


def _log_records(daemon):
    """The log as records: a line with a timestamp and what follows it."""
    records = []
    for line in daemon.log().splitlines():
        if re.match(r'\d{4}-\d\d-\d\d ', line) or not records:
            records.append(line)
        else:
            records[-1] += '\n' + line
    return records


@pytest.mark.parametrize('kind', ['postgresql', 'mysql'])
def test_database_cut_mid_prune_then_restored(kind, make_cache, daemons,
                                              links, tmp_path):
    """Runs fail clearly, the API answers, and nothing is left half done."""
    workload = faults.Workload(make_cache(kind), 2000)
    max_size = workload.total // 4
    survivors = workload.survivors(max_size)
    link = links(workload.cache.url)
    link.cut_on(b'DELETE FROM cached_images')
    daemon = daemons(workload.cache,
                     connection=link.url(workload.cache.url),
                     image_cache_max_size=max_size, cache_prune_interval=1,
                     cache_clean_interval=1).start()
    worker = processes.wait_for(daemon.workers, 'a forked worker')

    processes.wait_for(link.cut_event.is_set,
                       'the prune to send its first DELETE of records',
                       diagnostics=daemon.diagnostics)
    processes.wait_for(lambda: _failed(daemon, 'prune') and
                       _failed(daemon, 'clean'),
                       'a failed prune and a failed clean in the record',
                       diagnostics=daemon.diagnostics)

    # The DELETE of the first batch's records never reached the server, so
    # none of its files was unlinked: every file still has its record.
    workload.assert_exactly(set(workload.ids))

    # The service is up and answers: versions, its record of runs, and a
    # clear JSON error (no trace, no host path) for what needs the database.
    assert daemon.request('GET', '/versions').status_code == 200
    for method, path in (('GET', '/v2/cache'), ('POST', '/v2/cache/clean'),
                         ('POST', '/v2/cache/prune')):
        response = daemon.request(method, path, token='admin')
        assert response.status_code == 503, response.text
        error = response.json()['error']
        assert error['code'] == 503
        assert 'metadata is not usable' in error['message']
        assert str(tmp_path) not in response.text
        assert 'Traceback' not in response.text

    link.restore()
    restored_at = time.time()

    # The next runs succeed: the prune evicts what it could not before.
    processes.wait_for(
        lambda: workload.files() == set(workload.rows()) == survivors,
        'the cache to be pruned and its records to agree',
        diagnostics=lambda: workload.state() + '\n' + daemon.diagnostics())
    workload.assert_exactly(survivors)
    for task in ('prune', 'clean'):
        first_after = processes.wait_for(
            lambda: [r for r in daemon.runs(task)
                     if r['started_at'] >= restored_at],
            'a %s run after the database came back' % task)[0]
        assert first_after['outcome'] == 'succeeded', first_after
    assert daemon.workers() == worker, 'the worker was replaced'
    assert daemon.process.poll() is None
    listing = daemon.request('GET', '/v2/cache', token='admin')
    assert listing.status_code == 200
    assert {i['image_id'] for i in listing.json()['cached_images']} == (
        survivors)

    # Each failed run was one clear line in the log (counted now that no
    # more runs fail): it names the task, what it was doing and the
    # database, and carries no traceback. The first one says that the
    # files of the records it could not delete are all still there.
    runs = daemon.runs()
    failures = [r for r in runs if r['outcome'] == 'failed']
    assert all(r['error'] and 'metadata is not usable' in r['error']
               for r in failures)
    records = _log_records(daemon)
    lines = [r for r in records if FAILED_RUN.search(r)]
    assert len(lines) == len(failures), '\n'.join(lines)
    for line in lines:
        assert ' ERROR ' in line
        assert '\n' not in line, line
        assert 'database of [database] connection' in line, line
    assert not any('Traceback' in r for r in records), daemon.diagnostics()
    first = next(line for line in lines if 'Prune run (periodic)' in line)
    assert 'removed 0 images, then could not delete the records of the ' \
        'next ones, whose files are all still there' in first, first
