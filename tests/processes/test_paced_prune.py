"""The real service, pacing its prune with ``[prune] max_delete_rate``.

A process standing in for glance-api holds the least recently used image
open, as it does while sending it to a client: the paced prune evicts it
and the reader still gets every byte. A SIGTERM in the middle of a paced
prune of many steps stops it between two steps, and every image that stays
keeps its record.
"""

import hashlib
import os
import signal
import threading

from tests.support import processes

MIB = 1024 * 1024


def _image(cache, size, accessed, fill):
    image_id = cache.add_image(size=size, last_accessed=accessed)
    with open(os.path.join(cache.path, image_id), 'wb') as f:
        f.write(fill * size)
    return image_id


def _paced_daemon(daemons, limit, rate):
    # No timer: the test's own request is the one prune.
    daemon = daemons(image_cache_max_size=limit, cache_prune_interval=0,
                     cache_clean_interval=0)
    daemon.add_sections({'prune': {'max_delete_rate': rate}})
    return daemon.start()


def test_an_image_being_read_is_kept_whole_for_its_reader(cache, daemons):
    # glance-api streaming an image holds it open: the prune leaves it (the
    # release in steps never truncates a file another process has open
    # either: tests/inprocess/test_pacing.py) and evicts the next instead.
    served = _image(cache, 6 * MIB, 1000.0, b'\x01')
    for i in range(3):
        _image(cache, 6 * MIB, 1001.0 + i, b'\x02')
    reader = processes.Reader(os.path.join(cache.path, served))
    try:
        # Steps of 2 MiB: the others are released in three each.
        daemon = _paced_daemon(daemons, 6 * MIB, '4M')
        response = daemon.post('prune')
        digest = reader.finish()
    finally:
        reader.close()
    assert response.status_code == 200, response.text
    assert response.json()['total_files_pruned'] == 3
    assert digest == hashlib.sha256(b'\x01' * 6 * MIB).hexdigest()
    assert cache.images() == {served}
    assert set(cache.rows()) == {served}
    assert daemon.log_lines('Prune was paced by [prune] max_delete_rate')
    assert daemon.log_lines('1 images held open by another process were '
                            'kept')


def test_sigterm_stops_a_paced_prune_between_steps(cache, daemons):
    # 16 images of 4 MiB to evict at 1 MiB/s: about a minute of steps.
    images = [_image(cache, 4 * MIB, 1000.0 + i, b'\x03') for i in range(17)]
    daemon = _paced_daemon(daemons, 4 * MIB, '1M')
    answers = []
    request = threading.Thread(target=lambda: answers.append(
        _answer(daemon)), daemon=True)
    request.start()
    processes.wait_for(lambda: images[0] not in cache.images(),
                       'the first image evicted',
                       diagnostics=daemon.diagnostics)
    daemon.send_signal(signal.SIGTERM)
    # Far less than the minute the rest of the prune would take.
    daemon.process.wait(30)
    assert daemon.process.returncode == 0, daemon.diagnostics()
    left = cache.images()
    assert images[-1] in left and len(left) > 1
    assert set(cache.rows()) == left
    # The request got what the prune did before it stopped (or, had the
    # service gone first, a closed connection): never a hang.
    request.join(30)
    assert answers, 'the prune request got no answer'
    if answers[0][0] == 200:
        assert answers[0][1]['total_files_pruned'] == 17 - len(left)


def _answer(daemon):
    """(status, body) of an admin's prune, or the error that ended it."""
    try:
        response = daemon.post('prune')
    except OSError as e:
        return type(e).__name__, None
    return response.status_code, response.json()
