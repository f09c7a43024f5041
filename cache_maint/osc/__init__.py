"""The openstack CLI's ``cache clean`` and ``cache prune`` commands."""
