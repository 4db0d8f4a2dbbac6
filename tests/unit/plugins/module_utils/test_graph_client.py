# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Retry-After parsing, backoff, error messages, permission hints and URL handling of ``_graph_client``."""

from __future__ import annotations

import email.utils
from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.entra.autopilot.plugins.module_utils._graph_client import (
    BACKOFF_CAP,
    BatchRequest,
    BatchResponse,
    GraphClient,
    GraphError,
    backoff_delay,
    graph_error,
    parse_retry_after,
    permission_hint,
)

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize('value, seconds', [
    ('2', 2.0), ('2.128', 2.128), (' 0 ', 0.0), ('0.5', 0.5), ('-3', 0.0),
    (email.utils.format_datetime(NOW + timedelta(seconds=7), usegmt=True), 7.0),
    (email.utils.format_datetime(NOW - timedelta(seconds=7), usegmt=True), 0.0),
    (None, None), ('', None), ('soon', None), ('nan', None), ('inf', None),
])
def test_parse_retry_after(value, seconds):
    assert parse_retry_after(value, now=NOW) == seconds


def test_backoff_grows_is_jittered_and_capped():
    for attempt in range(12):
        ceiling = min(BACKOFF_CAP, 2 ** attempt)
        assert backoff_delay(attempt, rng=lambda: 0.0) == ceiling / 2
        assert backoff_delay(attempt, rng=lambda: 0.999999) == pytest.approx(ceiling, rel=1e-5)
    assert backoff_delay(1000, rng=lambda: 1.0) == BACKOFF_CAP


ERROR_403 = {'error': {'code': 'Authorization_RequestDenied', 'message': 'Insufficient privileges to complete the operation.',
                       'innerError': {'date': '2026-01-01T00:00:00', 'request-id': 'rid-body', 'client-request-id': 'crid'}}}


def test_error_message_shape_of_the_contract():
    err = graph_error('PUT', 'policies/deviceRegistrationPolicy', 403, ERROR_403)
    assert str(err) == ('Graph PUT policies/deviceRegistrationPolicy failed: HTTP 403 Authorization_RequestDenied: '
                        'Insufficient privileges to complete the operation. (request-id rid-body). '
                        'The app needs the application permission Policy.ReadWrite.DeviceConfiguration '
                        '(or, delegated, the Cloud Device Administrator role).')
    assert (err.status, err.code, err.request_id, err.method, err.path) == (
        403, 'Authorization_RequestDenied', 'rid-body', 'PUT', 'policies/deviceRegistrationPolicy')
    assert err.details == {'status': 403, 'error_code': 'Authorization_RequestDenied', 'request_id': 'rid-body'}


def test_request_id_header_wins_and_absolute_urls_are_shortened():
    err = graph_error('GET', 'https://graph.microsoft.com/v1.0/policies/deviceRegistrationPolicy?$select=id', 403, ERROR_403,
                      {'Request-Id': 'rid-header'})
    assert str(err).startswith('Graph GET policies/deviceRegistrationPolicy failed: HTTP 403 Authorization_RequestDenied: '
                               'Insufficient privileges to complete the operation. (request-id rid-header).')
    assert 'Policy.Read.DeviceConfiguration' in str(err)


def test_401_says_the_token_was_rejected():
    body = {'error': {'code': 'InvalidAuthenticationToken', 'message': 'Access token has expired or is not yet valid.'}}
    msg = str(graph_error('GET', 'policies/deviceRegistrationPolicy', 401, body))
    assert 'HTTP 401 InvalidAuthenticationToken: Access token has expired or is not yet valid.' in msg
    assert 'The access token was rejected (expired, issued for another tenant or cloud' in msg


@pytest.mark.parametrize('body, reason, fragment', [
    ('<html><body>Bad gateway</body></html>', 'Bad Gateway', 'HTTP 502: Bad gateway.'),
    ('', 'Bad Gateway', 'HTTP 502 Bad Gateway.'),
    (None, '', 'HTTP 502.'),
    ({'unexpected': True}, 'Bad Gateway', 'HTTP 502 Bad Gateway.'),
    ('line one\nline two', '', 'HTTP 502: line one line two.'),
])
def test_non_json_and_empty_error_bodies(body, reason, fragment):
    msg = str(graph_error('GET', 'users/x', 502, body, reason=reason))
    assert msg == f'Graph GET users/x failed: {fragment}'


def test_gave_up_text_is_appended():
    body = {'error': {'code': 'TooManyRequests', 'message': 'Please retry again later.'}}
    msg = str(graph_error('GET', 'users', 429, body, {'request-id': 'r1'}, gave_up='Gave up after 5 retries in 9.0 s.'))
    assert msg == 'Graph GET users failed: HTTP 429 TooManyRequests: Please retry again later. (request-id r1). Gave up after 5 retries in 9.0 s.'


@pytest.mark.parametrize('method, path, permission', [
    ('GET', 'policies/deviceRegistrationPolicy', 'Policy.Read.DeviceConfiguration'),
    ('PUT', '/policies/deviceRegistrationPolicy', 'Policy.ReadWrite.DeviceConfiguration'),
    ('POST', 'directoryObjects/getByIds', 'Directory.Read.All'),
    ('GET', 'users/abc', 'User.Read.All'),
    ('GET', "users('$x@contoso.com')", 'User.Read.All'),
    ('GET', "groups?$filter=displayName eq 'x'", 'Group.Read.All'),
    ('GET', 'groups/abc/members/microsoft.graph.user/$count', 'GroupMember.Read.All'),
    ('GET', 'https://graph.microsoft.com/beta/groups/abc', 'Group.Read.All'),
])
def test_permission_hint(method, path, permission):
    assert permission in permission_hint(method, path)


def test_no_permission_hint_for_unknown_paths():
    assert permission_hint('POST', '$batch') is None
    assert 'The app needs' not in str(graph_error('POST', '$batch', 403, ERROR_403))


def test_put_hint_names_the_delegated_role():
    assert 'Cloud Device Administrator' in permission_hint('PUT', 'policies/deviceRegistrationPolicy')


def test_batch_request_json():
    plain = BatchRequest('1', 'get', 'users/abc')
    assert plain.to_json() == {'id': '1', 'method': 'GET', 'url': '/users/abc'}
    counted = BatchRequest('2', 'GET', '/groups/g/members/microsoft.graph.user/$count', headers={'ConsistencyLevel': 'eventual'})
    assert counted.to_json()['headers'] == {'ConsistencyLevel': 'eventual'}
    posted = BatchRequest('3', 'POST', 'directoryObjects/getByIds', body={'ids': ['a']})
    assert posted.to_json() == {'id': '3', 'method': 'POST', 'url': '/directoryObjects/getByIds', 'body': {'ids': ['a']},
                                'headers': {'Content-Type': 'application/json'}}


def test_batch_response_error():
    ok = BatchResponse('1', 200, {}, {'id': 'x'}, method='GET', url='users/x')
    assert ok.error() is None
    denied = BatchResponse('2', 403, {'Content-Type': 'application/json'}, ERROR_403, method='GET', url='/groups/g')
    err = denied.error()
    assert isinstance(err, GraphError)
    assert str(err).startswith('Graph GET groups/g failed: HTTP 403 Authorization_RequestDenied')
    assert 'Group.Read.All' in str(err)


def test_client_urls_and_foreign_links():
    client = GraphClient(None, 'https://graph.example:8443/', 'beta', 'tok', timeout=5, max_retries=1)
    assert client.base_url == 'https://graph.example:8443/beta/'
    assert client.url('policies/deviceRegistrationPolicy') == 'https://graph.example:8443/beta/policies/deviceRegistrationPolicy'
    assert client.url('/users') == 'https://graph.example:8443/beta/users'
    link = 'https://GRAPH.example:8443/beta/users?$skiptoken=abc'
    assert client.url(link) == link
    with pytest.raises(GraphError, match='refusing to send the token there'):
        client.url('https://evil.example/beta/users?$skiptoken=abc')
    with pytest.raises(GraphError, match='another host'):
        client.url('http://graph.example:8443/beta/users')


def test_batch_ids_must_be_unique():
    client = GraphClient(None, 'https://graph.example', 'v1.0', 'tok', timeout=5, max_retries=1)
    with pytest.raises(ValueError, match='unique'):
        client.batch([BatchRequest('1', 'GET', 'users/a'), BatchRequest('1', 'GET', 'users/b')])
