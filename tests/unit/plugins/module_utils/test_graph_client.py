# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Retry-After parsing, backoff, error messages, permission hints and URL handling of ``_graph_client``."""

from __future__ import annotations

import email.utils
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.entra.autopilot.plugins.module_utils._auth import EntraSession, build_session, settings_from_params
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
    ('POST', 'users/abc/checkMemberGroups', 'permissions User.Read.All and GroupMember.Read.All'),
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


# --- real requests over HTTPS against the emulator ------------------------------------------------------------------

class FakeClock:
    """Injected ``sleep``/``clock``: waits are recorded and advance the clock instantly."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


class CountingSession(EntraSession):
    """The real session, counting how often pooled connections were dropped."""

    fresh_calls = 0

    def fresh_connections(self) -> None:
        self.fresh_calls += 1
        super().fresh_connections()


@pytest.fixture(autouse=True)
def no_leftover_faults(request):
    yield
    if 'emulator' in request.fixturenames:
        request.getfixturevalue('emulator').control.clear_faults()


@pytest.fixture
def graph(emulator, tenant):
    """``graph(app=None, **client_options) -> (client, clock)``: a client with an emulator token for one of the tenant's apps."""

    def make(app: str | None = None, token: str | None = None, **options):
        client_id = tenant['apps'][app]['client_id'] if app else tenant['client_id']
        token = token or emulator.control.token(tenant['tenant_id'], client_id)
        session = CountingSession(build_session(settings_from_params({
            'access_token': token, 'graph_endpoint': tenant['graph_endpoint'], 'ca_bundle': tenant['ca_bundle']})).entra_verify, 10)
        clock = FakeClock()
        settings = {'timeout': 10, 'max_retries': 5, 'sleep': clock.sleep, 'clock': clock.clock, 'rng': lambda: 0.0}
        settings.update(options)
        return GraphClient(session, tenant['graph_endpoint'], 'v1.0', token, **settings), clock

    return make


def log(emulator, tenant, since, kind='graph'):
    return [entry for entry in emulator.control.log(tenant=tenant['tenant_id'], since=since) if kind in (None, entry['kind'])]


def fault(emulator, tenant, **spec):
    emulator.control.fault(tenant=tenant['tenant_id'], **spec)


POLICY = 'policies/deviceRegistrationPolicy'


def test_get_and_put_with_a_fresh_client_request_id_each(emulator, tenant, graph):
    client = graph()[0]
    since = emulator.control.last_seq()
    policy = client.get(POLICY)
    assert policy['id'] == 'deviceRegistrationPolicy'
    body = {key: value for key, value in policy.items() if key not in ('id', 'displayName', 'description', '@odata.context')}
    body['userDeviceQuota'] = 20
    answer = client.put(POLICY, body)
    assert answer['userDeviceQuota'] == 20
    entries = log(emulator, tenant, since)
    assert [(entry['method'], entry['status']) for entry in entries] == [('GET', 200), ('PUT', 200)]
    assert entries[1]['body'] == body
    ids = [entry['client_request_id'] for entry in entries]
    assert len(set(ids)) == 2 and all(str(uuid.UUID(value)) == value for value in ids)


def test_403_names_the_permission(emulator, tenant, graph):
    client = graph('readonly')[0]
    since = emulator.control.last_seq()
    with pytest.raises(GraphError) as err:
        client.put(POLICY, {'userDeviceQuota': 50})
    entry = log(emulator, tenant, since)[-1]
    msg = str(err.value)
    assert msg == ('Graph PUT policies/deviceRegistrationPolicy failed: HTTP 403 Authorization_RequestDenied: Insufficient privileges to '
                   f"complete the operation. (request-id {entry['request_id']}). The app needs the application permission "
                   'Policy.ReadWrite.DeviceConfiguration (or, delegated, the Cloud Device Administrator role).')
    assert (err.value.status, err.value.code, err.value.client_request_id) == (403, 'Authorization_RequestDenied', entry['client_request_id'])
    no_permissions = graph('no-permissions')[0]
    with pytest.raises(GraphError, match=r'HTTP 403 .* Policy\.Read\.DeviceConfiguration'):
        no_permissions.get(POLICY)
    policy_only = graph('policy-only')[0]
    with pytest.raises(GraphError, match=r'HTTP 403 .* User\.Read\.All'):
        policy_only.get('users')


def test_401_for_an_expired_token(emulator, tenant, graph):
    expired = emulator.control.token(tenant['tenant_id'], tenant['client_id'], expires_in=-120)
    client, clock = graph(token=expired)
    with pytest.raises(GraphError) as err:
        client.get(POLICY)
    assert err.value.status == 401
    assert 'The access token was rejected (expired, issued for another tenant or cloud' in str(err.value)
    assert expired not in str(err.value)
    assert clock.sleeps == []


def test_429_with_retry_after_recovers(emulator, tenant, graph):
    client, clock = graph()
    fault(emulator, tenant, path='policies/deviceRegistrationPolicy', status=429, retry_after=1.5, count=2)
    since = emulator.control.last_seq()
    assert client.get(POLICY)['id'] == 'deviceRegistrationPolicy'
    assert clock.sleeps == [1.5, 1.5]
    entries = log(emulator, tenant, since)
    assert [entry['status'] for entry in entries] == [429, 429, 200]
    assert len({entry['client_request_id'] for entry in entries}) == 3
    assert client.session.fresh_calls == 0


def test_retry_after_as_http_date(emulator, tenant, graph):
    client, clock = graph()
    when = email.utils.format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    fault(emulator, tenant, path='policies/deviceRegistrationPolicy', status=503, retry_after=when, count=1)
    assert client.get(POLICY)['id'] == 'deviceRegistrationPolicy'
    assert len(clock.sleeps) == 1 and 27 <= clock.sleeps[0] <= 30


def test_503_backs_off_exponentially_over_fresh_connections(emulator, tenant, graph):
    client, clock = graph()
    fault(emulator, tenant, path='policies/deviceRegistrationPolicy', status=503, count=3)
    assert client.get(POLICY)['id'] == 'deviceRegistrationPolicy'
    assert clock.sleeps == [0.5, 1.0, 2.0]  # rng 0: half of 1, 2, 4 seconds
    assert client.session.fresh_calls == 3


def test_retries_exhausted(emulator, tenant, graph):
    client, clock = graph(max_retries=3)
    fault(emulator, tenant, path='policies/deviceRegistrationPolicy', status=504, count=4)
    since = emulator.control.last_seq()
    with pytest.raises(GraphError) as err:
        client.get(POLICY)
    assert [entry['status'] for entry in log(emulator, tenant, since)] == [504] * 4
    assert len(clock.sleeps) == 3
    msg = str(err.value)
    assert msg.startswith('Graph GET policies/deviceRegistrationPolicy failed: HTTP 504 ')
    assert 'Gave up after 3 retries in 3.5 s; try again later or raise max_retries.' in msg


def test_total_wait_cap(emulator, tenant, graph):
    client, clock = graph(max_retries=10, max_total_wait=3.0)
    fault(emulator, tenant, path='policies/deviceRegistrationPolicy', status=429, count=10)
    with pytest.raises(GraphError, match=r'HTTP 429 TooManyRequests.*Gave up after 2 retries in 1\.5 s'):
        client.get(POLICY)
    assert clock.sleeps == [0.5, 1.0]
    emulator.control.clear_faults()
    fault(emulator, tenant, path='policies/deviceRegistrationPolicy', status=429, retry_after=200, count=1)
    since = emulator.control.last_seq()
    with pytest.raises(GraphError, match='Graph asked to wait 200 s, more than the retry time limit of 3 s'):
        client.get(POLICY)
    assert len(log(emulator, tenant, since)) == 1


def test_dropped_connection_is_retried(emulator, tenant, graph):
    client, clock = graph()
    fault(emulator, tenant, path='policies/deviceRegistrationPolicy', drop=True, count=1)
    since = emulator.control.last_seq()
    assert client.get(POLICY)['id'] == 'deviceRegistrationPolicy'
    assert [entry['status'] for entry in log(emulator, tenant, since)] == [0, 200]
    assert clock.sleeps == [0.5]


def test_dropped_connections_exhausted(emulator, tenant, graph):
    client, clock = graph(max_retries=2)
    fault(emulator, tenant, path='policies/deviceRegistrationPolicy', drop=True, count=3)
    with pytest.raises(GraphError) as err:
        client.get(POLICY)
    msg = str(err.value)
    assert msg.startswith(f"Graph GET policies/deviceRegistrationPolicy failed: Cannot connect to {tenant['graph_endpoint']} (")
    assert msg.endswith('Gave up after 2 retries in 1.5 s; try again later or raise max_retries.')
    assert clock.sleeps == [0.5, 1.0]


def test_untrusted_graph_certificate_is_not_retried(emulator, tenant):
    token = emulator.control.token(tenant['tenant_id'], tenant['client_id'])
    clock = FakeClock()
    client = GraphClient(EntraSession(True, 10), tenant['graph_endpoint'], 'v1.0', token, timeout=10, max_retries=3,
                         sleep=clock.sleep, clock=clock.clock)
    with pytest.raises(GraphError) as err:
        client.get(POLICY)
    assert str(err.value).startswith(f"Graph GET policies/deviceRegistrationPolicy failed: The TLS certificate of {tenant['graph_endpoint']} "
                                     'is not trusted (certificate verify failed')
    assert clock.sleeps == []
    assert token not in str(err.value)


def test_non_json_error_body(emulator, tenant, graph):
    client = graph()[0]
    fault(emulator, tenant, path='policies/deviceRegistrationPolicy', status=502, body='<html><body><h1>502 Bad Gateway</h1></body></html>')
    with pytest.raises(GraphError) as err:
        client.get(POLICY)
    assert str(err.value).startswith('Graph GET policies/deviceRegistrationPolicy failed: HTTP 502: 502 Bad Gateway (request-id ')


def test_empty_put_answer_is_none(emulator, tenant, graph):
    client = graph()[0]
    policy = client.get(POLICY)
    fault(emulator, tenant, method='PUT', path='policies/deviceRegistrationPolicy', status=204, body='')
    body = {key: value for key, value in policy.items() if key not in ('id', 'displayName', 'description', '@odata.context')}
    assert client.put(POLICY, body) is None


def test_paging_follows_next_links(emulator, tenant, graph):
    client = graph()[0]
    expected = sorted(user['id'] for user in emulator.control.state(tenant['tenant_id'])['users'])
    since = emulator.control.last_seq()
    users = client.get_all('users', params={'$top': '4', '$select': 'id,userPrincipalName'})
    assert sorted(user['id'] for user in users) == expected
    entries = log(emulator, tenant, since)
    assert len(entries) == -(-len(expected) // 4)
    assert all(entry['query'].get('$top') == '4' for entry in entries)
    assert [bool(entry['query'].get('$skiptoken')) for entry in entries] == [False] + [True] * (len(entries) - 1)


def test_text_plain_count(emulator, tenant, graph):
    client = graph()[0]
    group = next(group for group in emulator.control.state(tenant['tenant_id'])['groups'] if group['displayName'] == 'Autopilot Technicians')
    count = client.get(f"groups/{group['id']}/members/microsoft.graph.user/$count", headers={'ConsistencyLevel': 'eventual'})
    assert count.strip() == '4'


def test_batch_in_chunks_of_twenty(emulator, tenant, graph):
    client = graph()[0]
    users = [user['id'] for user in emulator.control.state(tenant['tenant_id'])['users']]
    requests_ = [BatchRequest(str(index), 'GET', f'users/{users[index % len(users)]}?$select=id') for index in range(25)]
    missing = '00000000-0000-0000-0000-0000000000aa'
    requests_.append(BatchRequest('missing', 'GET', f'users/{missing}'))
    since = emulator.control.last_seq()
    results = client.batch(requests_)
    assert set(results) == {item.id for item in requests_}
    for index in range(25):
        assert results[str(index)].status == 200
        assert results[str(index)].body['id'] == users[index % len(users)]
    assert results['missing'].status == 404
    assert str(results['missing'].error()).startswith(f'Graph GET users/{missing} failed: HTTP 404 Request_ResourceNotFound')
    top_level = log(emulator, tenant, since)
    assert [(entry['method'], entry['path']) for entry in top_level] == [('POST', '/v1.0/$batch')] * 2
    assert len(log(emulator, tenant, since, kind='batch-item')) == 26


def test_batch_retries_throttled_items_after_the_longest_retry_after(emulator, tenant, graph):
    client, clock = graph()
    users = [user['id'] for user in emulator.control.state(tenant['tenant_id'])['users']][:5]
    fault(emulator, tenant, kind='batch-item', path='^/users/', status=429, retry_after=2, count=2)
    fault(emulator, tenant, kind='batch-item', path='^/users/', status=503, retry_after=3.5, count=1)
    since = emulator.control.last_seq()
    results = client.batch([BatchRequest(f'u{index}', 'GET', f'users/{user}') for index, user in enumerate(users)])
    assert {item.status for item in results.values()} == {200}
    assert clock.sleeps == [3.5]
    items = log(emulator, tenant, since, kind='batch-item')
    assert sorted(entry['status'] for entry in items) == [200] * 5 + [429, 429, 503]
    assert len(log(emulator, tenant, since)) == 2  # the first batch and one batch with the three throttled items


def test_batch_throttling_that_never_ends_returns_the_429s(emulator, tenant, graph):
    client, clock = graph(max_retries=2)
    user = emulator.control.state(tenant['tenant_id'])['users'][0]['id']
    fault(emulator, tenant, kind='batch-item', path='^/users/', status=429, retry_after=1, count=-1)
    results = client.batch([BatchRequest('1', 'GET', f'users/{user}')])
    assert results['1'].status == 429
    assert clock.sleeps == [1.0, 1.0]
    assert str(results['1'].error()).startswith(f'Graph GET users/{user} failed: HTTP 429 TooManyRequests')


def test_whole_batch_throttled_is_retried(emulator, tenant, graph):
    client, clock = graph()
    user = emulator.control.state(tenant['tenant_id'])['users'][0]['id']
    fault(emulator, tenant, path=r'^/?\$batch', status=429, retry_after=0.25, count=1)
    assert client.batch([BatchRequest('1', 'GET', f'users/{user}')])['1'].status == 200
    assert clock.sleeps == [0.25]
