# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Graph's answers to bad tokens (401) and missing permissions (403), and the error/response shape."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest

from graph_emulator.testing import DEMO_IDS, POLICY_PATH, GraphSession

GET_BY_IDS = {'ids': [DEMO_IDS['adele']], 'types': ['user', 'group']}


def _assert_graph_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()['error']
    assert error['code'] == code
    inner = error['innerError']
    assert inner['request-id'] == response.headers['request-id']
    assert set(inner) >= {'date', 'request-id', 'client-request-id'}
    return error


def test_missing_token(emulator):
    error = _assert_graph_error(GraphSession(emulator.url, emulator.ca_bundle, None).get(POLICY_PATH), 401, 'InvalidAuthenticationToken')
    assert error['message'] == 'Access token is empty.'


@pytest.mark.parametrize('token', ['garbage', 'a.b.c', 'eyJhbGciOiJub25lIn0.eyJ0aWQiOiJ4In0.'])
def test_malformed_token(emulator, token):
    response = GraphSession(emulator.url, emulator.ca_bundle, token).get(POLICY_PATH)
    _assert_graph_error(response, 401, 'InvalidAuthenticationToken')
    assert 'WWW-Authenticate' in response.headers


def test_expired_token(emulator, tenant):
    token = emulator.control.token(tenant['tenant_id'], tenant['client_id'], expires_in=-5)
    error = _assert_graph_error(GraphSession(emulator.url, emulator.ca_bundle, token).get(POLICY_PATH), 401, 'InvalidAuthenticationToken')
    assert 'expired' in error['message']


def test_short_lived_token_expires(emulator, tenant):
    graph = GraphSession(emulator.url, emulator.ca_bundle, emulator.control.token(tenant['tenant_id'], tenant['client_id'], expires_in=2))
    assert graph.get(POLICY_PATH).status_code == 200
    time.sleep(2.5)
    assert graph.get(POLICY_PATH).status_code == 401


def test_foreign_signature_and_audience(emulator, tenant):
    genuine = emulator.control.token(tenant['tenant_id'], tenant['client_id'])
    claims = jwt.decode(genuine, options={'verify_signature': False})
    with open(tenant['unregistered_certificate_path'], encoding='ascii') as handle:
        forged = jwt.encode(claims, handle.read(), algorithm='RS256', headers=jwt.get_unverified_header(genuine))
    _assert_graph_error(GraphSession(emulator.url, emulator.ca_bundle, forged).get(POLICY_PATH), 401, 'InvalidAuthenticationToken')
    other_audience = emulator.control.token(tenant['tenant_id'], tenant['client_id'], audience='https://graph.microsoft.com')
    error = _assert_graph_error(GraphSession(emulator.url, emulator.ca_bundle, other_audience).get(POLICY_PATH), 401, 'InvalidAuthenticationToken')
    assert 'audience' in error['message']


def test_token_of_a_deleted_tenant(emulator):
    tenant_id = str(uuid.uuid4())
    credentials = emulator.control.new_tenant(tenant_id)
    graph = GraphSession(emulator.url, emulator.ca_bundle, emulator.control.token(tenant_id, credentials['client_id']))
    assert graph.get(POLICY_PATH).status_code == 200
    emulator.control.delete_tenant(tenant_id)
    _assert_graph_error(graph.get(POLICY_PATH), 401, 'InvalidAuthenticationToken')


def test_read_only_app_cannot_write(graph_as):
    readonly = graph_as('readonly')
    body = readonly.put_body()
    error = _assert_graph_error(readonly.put(POLICY_PATH, json=body), 403, 'Authorization_RequestDenied')
    assert error['message'] == 'Insufficient privileges to complete the operation.'


CALLS = {
    'policy GET': ('GET', POLICY_PATH, None),
    'policy PUT': ('PUT', POLICY_PATH, 'put_body'),
    'user': ('GET', 'users/' + DEMO_IDS['adele'], None),
    'users filter': ('GET', "users?$filter=userPrincipalName eq 'AdeleV@contoso.com'", None),
    'group': ('GET', 'groups/' + DEMO_IDS['technicians'], None),
    'groups filter': ('GET', "groups?$filter=displayName eq 'Sales'", None),
    'getByIds': ('POST', 'directoryObjects/getByIds', GET_BY_IDS),
    'members': ('GET', 'groups/%s/members' % DEMO_IDS['technicians'], None),
    'member count': ('GET', 'groups/%s/members/microsoft.graph.user/$count' % DEMO_IDS['technicians'], None),
}
# Which of these calls each permission allows (graph-contract.md section 2, "any of").
ALLOWS = {
    'Policy.Read.DeviceConfiguration': {'policy GET'},
    'Policy.Read.All': {'policy GET'},
    'Policy.ReadWrite.DeviceConfiguration': {'policy GET', 'policy PUT'},
    'User.Read.All': {'user', 'users filter'},
    'User.ReadBasic.All': {'user', 'users filter'},
    'User.ReadWrite.All': {'user', 'users filter'},
    'Group.Read.All': {'group', 'groups filter', 'members', 'member count'},
    'GroupMember.Read.All': {'group', 'groups filter', 'members', 'member count'},
    'Directory.Read.All': {'user', 'users filter', 'group', 'groups filter', 'getByIds', 'members', 'member count'},
}


@pytest.mark.parametrize('permission', sorted(ALLOWS))
def test_permission_matrix(emulator, tenant, graph, permission):
    token = emulator.control.token(tenant['tenant_id'], tenant['client_id'], roles=[permission])
    limited = GraphSession(emulator.url, emulator.ca_bundle, token)
    put_body = graph.put_body()
    for name, (method, path, body) in CALLS.items():
        json_body = put_body if body == 'put_body' else body
        response = limited.request(method, path, json=json_body, headers={'ConsistencyLevel': 'eventual'})
        if name in ALLOWS[permission]:
            assert response.status_code == 200, (permission, name, response.text)
        else:
            _assert_graph_error(response, 403, 'Authorization_RequestDenied')


def test_no_permission_app_gets_403_everywhere(graph_as):
    unconsented = graph_as('no-permissions')
    for method, path, body in CALLS.values():
        response = unconsented.request(method, path, json=body if isinstance(body, dict) else None, headers={'ConsistencyLevel': 'eventual'})
        assert response.status_code == 403


def test_response_headers_and_client_request_id(graph):
    client_request_id = str(uuid.uuid4())
    response = graph.get(POLICY_PATH, headers={'client-request-id': client_request_id})
    assert response.headers['client-request-id'] == client_request_id
    uuid.UUID(response.headers['request-id'])
    assert response.headers['Content-Type'].startswith('application/json')
    response = graph.get('users/nobody@contoso.com', headers={'client-request-id': client_request_id})
    error = _assert_graph_error(response, 404, 'Request_ResourceNotFound')
    assert error['innerError']['client-request-id'] == client_request_id


@pytest.mark.parametrize('path, status, code', [
    ('nothingHere', 400, 'BadRequest'),
    ('policies/somethingElse', 400, 'BadRequest'),
    ('users/73fa794b-cb5a-4050-96c5-4f700a5d147b', 404, 'Request_ResourceNotFound'),
    ('groups/4aae0b00-ccbf-41ff-9a7f-5649ac5a674e', 404, 'Request_ResourceNotFound'),
    ('groups/not-a-guid', 400, 'Request_BadRequest'),
    ('users/AdeleV@contoso.com/unknownSegment', 400, 'BadRequest'),
    ('users?$orderby=displayName', 400, 'Request_UnsupportedQuery'),
    ('users?$bogus=1', 400, 'BadRequest'),
])
def test_unknown_paths(graph, path, status, code):
    _assert_graph_error(graph.get(path), status, code)


def test_method_not_allowed(graph):
    _assert_graph_error(graph.request('PATCH', POLICY_PATH, json={'userDeviceQuota': 3}), 405, 'Request_BadRequest')
    _assert_graph_error(graph.request('DELETE', 'users/' + DEMO_IDS['adele']), 405, 'Request_BadRequest')
    _assert_graph_error(graph.get('$batch'), 405, 'Request_BadRequest')
