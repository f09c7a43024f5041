"""``openstack cache clean|prune [--dry-run]`` and ``cache pin|unpin``.

Loaded by the openstack CLI (python-openstackclient) only, through the
``openstack.image.v2`` entry points. Each command is one request to the
image endpoint the CLI is given (``--os-endpoint``, or the catalog's), made
with ``self.app.client_manager.image`` (the SDK's image proxy, a
keystoneauth adapter) and checked by ``openstack.exceptions``; the server
checks what it is sent (an image id, a note) and its 400 is shown as is.

A dry run keeps the output of its real run, a ShowOne of the counts, and
adds two fields: ``dry_run`` and the list of what would go (``images`` for
prune, ``files`` for clean). With ``-f json`` or ``-f yaml`` the command
prints the server's answer as it is; in a table the list is one line per
image or file under the column headings of a list command.
"""

import datetime
import urllib.parse

from cliff import columns
from openstack import exceptions
from osc_lib.command import command
from osc_lib import exceptions as osc_exceptions

#: What a time the server does not know is shown as (as ``cached image
#: list`` shows it).
UNKNOWN = 'N/A'


def _utc(epoch):
    """An epoch time as ``cached image list`` shows one: ISO 8601, UTC."""
    if epoch is None:
        return UNKNOWN
    return datetime.datetime.fromtimestamp(
        epoch, tz=datetime.timezone.utc).replace(
            tzinfo=None, microsecond=0).isoformat()


class TimeColumn(columns.FormattableColumn):
    """Epoch seconds: ISO 8601 UTC in a table, the number in json/yaml."""

    def human_readable(self):
        return _utc(self._value)


class PlanColumn(columns.FormattableColumn):
    """What a dry run would remove, as a list or as aligned lines.

    In json and yaml, the server's list as it is; in a table, one aligned
    line per entry under ``HEADINGS``. ``FIELDS`` are the keys of each
    entry, in the order of the headings; ``SHOWN`` formats a field for a
    table.
    """

    HEADINGS = ()
    FIELDS = ()
    SHOWN = {}

    def human_readable(self):
        if not self._value:
            return ''
        rows = [self.HEADINGS] + [
            tuple(self.SHOWN.get(field, _plain)(entry.get(field))
                  for field in self.FIELDS)
            for entry in self._value]
        widths = [max(len(row[i]) for row in rows)
                  for i in range(len(self.FIELDS))]
        return '\n'.join('  '.join(cell.ljust(width) for cell, width
                                   in zip(row, widths)).rstrip()
                         for row in rows)

    def machine_readable(self):
        return list(self._value or [])


def _plain(value):
    return UNKNOWN if value is None else str(value)


class PrunePlanColumn(PlanColumn):
    HEADINGS = ('Image ID', 'Size', 'Last Accessed (UTC)', 'Hits', 'Reason')
    FIELDS = ('image_id', 'size', 'last_accessed', 'hits', 'reason')
    SHOWN = {'last_accessed': _utc}


class CleanPlanColumn(PlanColumn):
    HEADINGS = ('Path', 'Size', 'Reason')
    FIELDS = ('path', 'size', 'reason')


#: The list field of each task's dry run, and how a table shows it.
PLANS = {'clean': ('files', CleanPlanColumn),
         'prune': ('images', PrunePlanColumn)}


def _show(result, formatters=None):
    """ShowOne's (columns, values) of an answer, in server order."""
    formatters = formatters or {}
    return tuple(result), tuple(formatters.get(key, lambda v: v)(value)
                                for key, value in result.items())


def _json(response):
    """The response's JSON body, or None (Glance answers clean with none)."""
    try:
        return response.json()
    except ValueError:
        return None


def _add_dry_run(parser, task, removes):
    parser.add_argument(
        '--dry-run', action='store_true',
        help='Remove nothing: show what %s would %s now, and why. Needs '
             'cache-maint: the command refuses to run against a server '
             'that would ignore it.' % (task, removes))
    return parser


def _dry_run(image, task):
    """The answer of ``POST /cache/<task>?dry_run=true``, as a dict.

    Glance has the same route without dry runs: it would ignore the
    parameter and run the task for real. So the server is first asked for
    a route only cache-maint has (its pins): only a 200 or a 403 (the route
    exists, the caller may not list pins) goes on, and the answer must say
    it was a dry run.
    """
    probe = image.get('/cache/pins')
    if probe.status_code not in (200, 403):
        raise osc_exceptions.CommandError(
            'Refusing to %s: the server may not support --dry-run (GET '
            '%s answered %d, where cache-maint answers 200 or 403) and '
            'would then run a real %s.'
            % (task, probe.url, probe.status_code, task))
    response = image.post('/cache/%s?dry_run=true' % task)
    exceptions.raise_from_response(response)
    result = _json(response)
    if not isinstance(result, dict) or result.get('dry_run') is not True:
        raise osc_exceptions.CommandError(
            'The server ignored --dry-run: it may have run a real %s.'
            % task)
    field, column = PLANS[task]
    return _show(result, {field: column})


class CleanCache(command.ShowOne):
    """Remove failed and stalled downloads from the image cache now."""

    def get_parser(self, prog_name):
        return _add_dry_run(super().get_parser(prog_name), 'clean',
                            'remove')

    def take_action(self, parsed_args):
        image = self.app.client_manager.image
        if parsed_args.dry_run:
            return _dry_run(image, 'clean')
        # The SDK's clean_cache() drops the body; cache-maint reports the
        # counts in it. Glance answers an empty body: nothing to show.
        response = image.post('/cache/clean')
        exceptions.raise_from_response(response)
        result = _json(response)
        return _show(result if isinstance(result, dict) else {})


class PruneCache(command.ShowOne):
    """Evict least recently used images down to the cache's size limit."""

    def get_parser(self, prog_name):
        return _add_dry_run(super().get_parser(prog_name), 'prune', 'evict')

    def take_action(self, parsed_args):
        image = self.app.client_manager.image
        if parsed_args.dry_run:
            return _dry_run(image, 'prune')
        return _show(image.prune_cache())


def _pin_path(image_id):
    # Quoted whole: the server, not the URL, says what a bad id is.
    return '/cache/pins/%s' % urllib.parse.quote(image_id, safe='')


#: How a pin's fields are shown.
PIN_FORMATTERS = {'pinned_at': TimeColumn}


class PinImage(command.ShowOne):
    """Pin an image in the image cache: prune never evicts it.

    The image need not be cached yet. Pinning a pinned image shows its pin
    (a --note given replaces its note).
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('image_id', metavar='<image-id>',
                            help='ID of the image to pin')
        parser.add_argument('--note', metavar='<text>',
                            help='Why it is pinned (printable text, at most '
                                 '255 characters)')
        return parser

    def take_action(self, parsed_args):
        body = None if parsed_args.note is None else {
            'note': parsed_args.note}
        response = self.app.client_manager.image.put(
            _pin_path(parsed_args.image_id), json=body)
        exceptions.raise_from_response(response)
        return _show(response.json(), PIN_FORMATTERS)


class UnpinImage(command.Command):
    """Unpin images in the image cache: prune may evict them again."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('image_ids', metavar='<image-id>', nargs='+',
                            help='ID of an image to unpin (repeat for more)')
        return parser

    def take_action(self, parsed_args):
        image = self.app.client_manager.image
        failed = 0
        for image_id in parsed_args.image_ids:
            try:
                exceptions.raise_from_response(
                    image.delete(_pin_path(image_id)))
            except exceptions.SDKException as e:
                failed += 1
                self.log.error('Failed to unpin image %s: %s', image_id, e)
        if failed:
            raise osc_exceptions.CommandError(
                'Failed to unpin %d of %d images.'
                % (failed, len(parsed_args.image_ids)))


class ListPins(command.Lister):
    """List the pinned images of the image cache, oldest pin first."""

    def take_action(self, parsed_args):
        response = self.app.client_manager.image.get('/cache/pins')
        exceptions.raise_from_response(response)
        return (('Image ID', 'Pinned At (UTC)', 'Note'),
                [(pin['image_id'], TimeColumn(pin['pinned_at']), pin['note'])
                 for pin in response.json()['pins']])
