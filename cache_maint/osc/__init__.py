"""The openstack CLI's ``cache clean|prune`` (with ``--dry-run``) and
``cache pin|unpin|pin list`` commands."""
