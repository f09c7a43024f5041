"""Fixtures every suite may use."""

import pytest

from tests.support import databases


@pytest.fixture(scope='module')
def server_urls():
    """One scratch database per server for the module, then dropped.

    ``databases.central_url`` makes each on first use.
    """
    urls = {}
    yield urls
    for url in urls.values():
        databases.drop_database(url)
