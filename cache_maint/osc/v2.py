"""``openstack cache clean`` and ``openstack cache prune``."""

from openstack import exceptions
from osc_lib.command import command


def _show(result):
    """ShowOne's (columns, values) of a task's counts, in server order."""
    return tuple(result), tuple(result.values())


class CleanCache(command.ShowOne):
    """Remove failed and stalled downloads from the image cache now."""

    def take_action(self, parsed_args):
        # The SDK's clean_cache() drops the body; cache-maint reports the
        # counts in it. Glance answers an empty body: nothing to show.
        response = self.app.client_manager.image.post('/cache/clean')
        exceptions.raise_from_response(response)
        try:
            result = response.json()
        except ValueError:
            result = None
        return _show(result if isinstance(result, dict) else {})


class PruneCache(command.ShowOne):
    """Evict least recently used images down to the cache's size limit."""

    def take_action(self, parsed_args):
        return _show(self.app.client_manager.image.prune_cache())
