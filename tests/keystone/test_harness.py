"""The Keystone harness itself: users, roles, policy, catalog, restarts.

What the rest of the suite relies on, checked against the real server: if
one of these fails, a failure elsewhere in ``tests/keystone`` says nothing
about cache-maint.
"""

import socket

from keystoneauth1 import session as ksa_session
from keystonemiddleware import auth_token
import pytest
import webob
import webob.dec

from tests.support import keystone as keystone_harness


def roles_of(keystone, credentials):
    """The role names in a new token of ``credentials``."""
    session = keystone.session(credentials)
    return set(session.auth.get_access(session).role_names)


def validate(keystone, token, subject):
    """GET /v3/auth/tokens: ``token`` asks about ``subject``."""
    return ksa_session.Session().get(
        keystone.auth_url + '/auth/tokens',
        headers={'X-Auth-Token': token, 'X-Subject-Token': subject},
        authenticated=False, raise_exc=False,
        timeout=keystone_harness.REQUEST_TIMEOUT)


def test_admin_token_has_admin_role(keystone):
    assert 'admin' in roles_of(keystone, keystone.admin)


def test_member_token_is_member_not_admin(keystone):
    roles = roles_of(keystone, keystone.member)
    assert 'member' in roles
    assert 'admin' not in roles


def test_service_user_validates_members_token(keystone):
    response = validate(keystone, keystone.token(keystone.service),
                        keystone.token(keystone.member))
    assert response.status_code == 200, response.text
    token = response.json()['token']
    assert token['user']['name'] == keystone.member.username
    assert token['project']['name'] == keystone.member.project_name
    assert 'member' in {role['name'] for role in token['roles']}


def test_member_cannot_validate_anothers_token(keystone):
    # What lets the service user validate is its role, not any token.
    response = validate(keystone, keystone.token(keystone.member),
                        keystone.token(keystone.service))
    assert response.status_code == 403, response.text


def test_catalog_has_identity_endpoint_per_interface(keystone):
    endpoints = keystone.endpoints('identity')
    assert sorted(e['interface'] for e in endpoints) == sorted(
        keystone_harness.INTERFACES)
    for endpoint in endpoints:
        assert endpoint['url'] == keystone.auth_url
        assert endpoint['region_id'] == keystone.region


def test_catalog_helpers(keystone):
    service_id = keystone.create_service('harness-check', 'harness')
    assert keystone.create_service('harness-check', 'harness') == service_id
    url = 'http://127.0.0.1:9/harness'
    endpoint_id = keystone.create_endpoint('harness-check', 'internal', url)
    assert keystone.endpoints('harness-check') == [
        {'id': endpoint_id, 'interface': 'internal', 'url': url,
         'region_id': keystone.region}]
    keystone.delete_endpoint(endpoint_id)
    assert keystone.endpoints('harness-check') == []


@webob.dec.wsgify
def whoami(request):
    """What keystonemiddleware tells the service about the caller."""
    return webob.Response(json={
        'status': request.headers.get('X-Identity-Status'),
        'user': request.headers.get('X-User-Name'),
        'roles': request.headers.get('X-Roles', '').split(',')})


def test_authtoken_section_lets_keystonemiddleware_validate(keystone):
    middleware = auth_token.AuthProtocol(
        whoami, dict(keystone.authtoken_section(), delay_auth_decision=False))
    request = webob.Request.blank('/', headers={
        'X-Auth-Token': keystone.token(keystone.member)})
    response = request.get_response(middleware)
    assert response.status_int == 200, response.text
    assert response.json['status'] == 'Confirmed'
    assert response.json['user'] == keystone.member.username
    assert 'member' in response.json['roles']
    refused = webob.Request.blank('/', headers={
        'X-Auth-Token': 'not-a-token'}).get_response(middleware)
    assert refused.status_int == 401


def test_stop_refuses_connections_and_start_serves_again(keystone):
    token = keystone.token(keystone.member)
    keystone.stop()
    try:
        assert not keystone.running
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((keystone.host, keystone.port),
                                     timeout=5).close()
        keystone.stop()     # idempotent
    finally:
        keystone.start()
    assert keystone.running
    # The keys and the users survived: the old token is still good.
    response = validate(keystone, keystone.token(keystone.service), token)
    assert response.status_code == 200, response.text
