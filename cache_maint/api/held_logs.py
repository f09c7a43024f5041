"""The libraries' log lines about Keystone, held back while they are read.

keystonemiddleware and keystoneauth log a failure to reach Keystone over
several lines (discovery, the response, the failure), none naming the
setting to check. While cache-maint authenticates a request or probes
Keystone, what they log in that thread is held back: replaced by one line
of ``identity.explain`` when it failed, logged as it was otherwise.
"""

import contextlib
import logging as std_logging
import threading

#: The loggers of the libraries that talk to Keystone for cache-maint.
HELD_LOGGERS = ('keystonemiddleware', 'keystoneauth')


class _Held(std_logging.Filter):
    """Holds back, per thread that asks, the records of HELD_LOGGERS.

    A filter on the root logger's handlers, since a logger's own filters
    do not see its children's records. A record reaches each handler, so
    it is kept once.
    """

    def __init__(self):
        super().__init__()
        self._local = threading.local()

    def filter(self, record):
        records = getattr(self._local, 'records', None)
        if records is None or not record.name.startswith(HELD_LOGGERS):
            return True
        if not any(held is record for held in records):
            records.append(record)
        return False

    @contextlib.contextmanager
    def holding(self):
        # Handlers come and go (oslo.log sets them up again on a reload).
        for handler in std_logging.getLogger().handlers:
            if self not in handler.filters:
                handler.addFilter(self)
        self._local.records = records = []
        try:
            yield records
        finally:
            self._local.records = None


_HELD = _Held()


def held_back():
    """A context in which this thread's HELD_LOGGERS records are kept.

    It gives the list they are kept in, for ``release``: what the
    libraries log about a failure is replaced by ``explain``'s one line.
    """
    return _HELD.holding()


def release(records, below=None):
    """Log the held ``records`` (those under level ``below``, if given)."""
    for record in records:
        if below is None or record.levelno < below:
            std_logging.getLogger(record.name).handle(record)
