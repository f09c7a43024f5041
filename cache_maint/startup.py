"""What a process does once it has started, before its real work."""

import gc


def freeze_start_up_objects():
    """Keep the objects made at start-up out of every garbage collection.

    The libraries, the configuration, the driver and (in the service) the
    application are some 90,000 objects that live as long as the process.
    The collector would walk them all in each full collection, and work
    that builds many objects sets one off: a third of the time of a
    GET /v2/cache of 20,000 images, and 40 ms of a ``cache-maint-manage
    prune`` that has nothing to do (600 images on MariaDB: 45 ms instead of
    2). The garbage made so far is collected first, so that none is kept
    for good.
    """
    gc.collect()
    gc.freeze()


def unfreeze():
    """Let the collector see the frozen objects again (on stop)."""
    gc.unfreeze()
