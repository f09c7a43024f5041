"""cache-maint's tests against a real Keystone 30 on loopback.

``python -m pytest tests/keystone``: the first run installs Keystone into
``.keystone-venv`` (or ``$CACHE_MAINT_KEYSTONE_VENV``) from PyPI.
"""
