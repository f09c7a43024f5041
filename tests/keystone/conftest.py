"""One real Keystone for the session (``tests.support.keystone``).

Keystone is installed from PyPI into a virtualenv of its own the first
time. Where it cannot be installed (no network, no ensurepip) the suite is
skipped on a developer's machine and fails in CI (``CI=true``); once it is
installed, a Keystone that does not set up or start is always a failure.
"""

import pytest

from tests.support import env
from tests.support import keystone as keystone_harness


@pytest.fixture(scope='session')
def keystone_venv():
    """Keystone's virtualenv, made on first use."""
    try:
        return keystone_harness.install()
    except keystone_harness.KeystoneError as e:
        env.unavailable('the Keystone suite needs %s from PyPI, which could '
                        'not be installed into %s: %s'
                        % (keystone_harness.KEYSTONE_PIN,
                           keystone_harness.default_venv(), e))


@pytest.fixture(scope='session')
def keystone(tmp_path_factory, keystone_venv):
    """A Keystone set up and running on loopback, stopped at the end."""
    server = keystone_harness.Keystone(tmp_path_factory.mktemp('keystone'),
                                       keystone_venv)
    server.setup()
    server.start()
    yield server
    server.stop()
