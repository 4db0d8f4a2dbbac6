# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""$batch chunks and getByIds pages sent in parallel: the same results as one after the other, throttled items retried,
one session per worker thread, and 5,000 names in 250 batches against the emulator."""

from __future__ import annotations

import threading

import pytest

from ansible_collections.entra.autopilot.plugins.module_utils._auth import EntraSession, build_session, settings_from_params
from ansible_collections.entra.autopilot.plugins.module_utils._graph_client import BATCH_LIMIT, BatchRequest, GraphClient, GraphError
from ansible_collections.entra.autopilot.plugins.module_utils._principals import PrincipalResolver

USERS = 150
NEVER_EXISTED = '00000000-0000-4000-8000-000000000bad'


class TrackingSession(EntraSession):
    """The real session; records the sessions made, the threads that used each, and how many used it at once."""

    made: list[TrackingSession] = []

    def __init__(self, verify, timeout) -> None:
        super().__init__(verify, timeout)
        self.threads: set[int] = set()
        self.active = self.most_active = 0
        self._lock = threading.Lock()
        TrackingSession.made.append(self)

    def request(self, method, url, *args, **kwargs):
        with self._lock:
            self.threads.add(threading.get_ident())
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            return super().request(method, url, *args, **kwargs)
        finally:
            with self._lock:
                self.active -= 1


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds

    def clock(self) -> float:
        return self.now


@pytest.fixture
def crowd_tenant(emulator, tenant) -> dict:
    """The demo tenant plus USERS generated users (ids are the emulator's uuid5 of the UPN)."""
    state = emulator.control.state(tenant['tenant_id'])
    state['generated_users'] = [{'count': USERS, 'userPrincipalName': 'crowd{n:04d}@contoso.com', 'displayName': 'Crowd {n}'}]
    emulator.control.new_tenant(tenant['tenant_id'], state=state)
    return tenant


@pytest.fixture
def client_for(emulator, crowd_tenant):
    """client_for(max_parallel) -> (GraphClient over a TrackingSession, FakeClock)."""
    token = emulator.control.token(crowd_tenant['tenant_id'], crowd_tenant['client_id'])
    verify = build_session(settings_from_params({'access_token': token, 'graph_endpoint': crowd_tenant['graph_endpoint'],
                                                 'ca_bundle': crowd_tenant['ca_bundle']})).entra_verify

    def make(max_parallel: int) -> tuple[GraphClient, FakeClock]:
        TrackingSession.made = []
        clock = FakeClock()
        client = GraphClient(TrackingSession(verify, 10), crowd_tenant['graph_endpoint'], 'v1.0', token, timeout=10, max_retries=5,
                             sleep=clock.sleep, clock=clock.clock, rng=lambda: 0.0, max_parallel=max_parallel)
        return client, clock

    yield make
    emulator.control.clear_faults()


def lookups(emulator, tenant) -> list[BatchRequest]:
    """GETs of the generated users, then one of a user that does not exist (404) and a bad query (400)."""
    adele = emulator.control.state(tenant['tenant_id'])['users'][0]['id']
    requests_ = [BatchRequest('u%d' % number, 'GET', 'users/crowd%04d@contoso.com?$select=id,userPrincipalName' % number)
                 for number in range(1, USERS + 1)]
    requests_ += [BatchRequest('gone', 'GET', 'users/' + NEVER_EXISTED), BatchRequest('bad', 'GET', 'users/%s?$select=nothing' % adele)]
    return requests_


def comparable(results: dict) -> dict:
    """The answers without what differs on every call (the request ids inside error bodies)."""
    return {key: (answer.status, answer.body if answer.status < 400 else answer.body['error']['code'], answer.method, answer.url)
            for key, answer in results.items()}


def log(emulator, tenant, since, kind):
    return [entry for entry in emulator.control.log(tenant=tenant['tenant_id'], since=since) if entry['kind'] == kind]


def test_parallel_results_are_those_of_one_after_the_other(emulator, crowd_tenant, client_for):
    requests_ = lookups(emulator, crowd_tenant)
    assert len(requests_) > 6 * BATCH_LIMIT
    sequential, _clock = client_for(1)
    expected = sequential.batch(requests_)
    assert len(TrackingSession.made) == 1
    parallel, _clock = client_for(8)
    since = emulator.control.last_seq()
    got = parallel.batch(requests_)
    assert list(got) == list(expected) == [item.id for item in requests_]  # same order too
    assert comparable(got) == comparable(expected)
    assert {got['gone'].status, got['bad'].status} == {404, 400}
    batches = log(emulator, crowd_tenant, since, 'graph')
    assert len(batches) == -(-len(requests_) // BATCH_LIMIT) and {entry['path'] for entry in batches} == {'/v1.0/$batch'}
    # the workers' sessions (clones: the client's own stays with the calling thread) were never used by two threads at once
    sessions = [session for session in TrackingSession.made if session.threads]
    assert 1 < len(sessions) <= 8 and TrackingSession.made[0] not in sessions
    assert [session.most_active for session in sessions] == [1] * len(sessions)
    assert len({thread for session in sessions for thread in session.threads}) > 1


def test_chunks_overlap_in_time(emulator, crowd_tenant, client_for):
    emulator.control.fault(tenant=crowd_tenant['tenant_id'], kind='graph', path=r'^/?\$batch', latency=0.2, count=-1)
    client, _clock = client_for(8)
    since = emulator.control.last_seq()
    client.batch(lookups(emulator, crowd_tenant))
    spans = [(entry['time'], entry['time'] + entry['duration']) for entry in log(emulator, crowd_tenant, since, 'graph')]
    overlapping = max(sum(1 for start, end in spans if start <= moment < end) for moment, _end in spans)
    assert overlapping > 1, spans


def test_throttled_items_of_parallel_chunks_are_retried_after_the_longest_retry_after(emulator, crowd_tenant, client_for):
    tenant_id = crowd_tenant['tenant_id']
    emulator.control.fault(tenant=tenant_id, kind='batch-item', path='^/users/crowd', status=429, retry_after=2, count=9)
    emulator.control.fault(tenant=tenant_id, kind='batch-item', path='^/users/crowd', status=503, retry_after=3.5, count=2)
    client, clock = client_for(8)
    requests_ = lookups(emulator, crowd_tenant)
    since = emulator.control.last_seq()
    results = client.batch(requests_)
    assert [results[item.id].status for item in requests_[:-2]] == [200] * (len(requests_) - 2)
    assert clock.sleeps == [3.5]
    assert len(log(emulator, crowd_tenant, since, 'batch-item')) == len(requests_) + 11
    assert len(log(emulator, crowd_tenant, since, 'graph')) == -(-len(requests_) // BATCH_LIMIT) + 1  # one batch of the 11 retried


def test_a_failing_chunk_raises(emulator, crowd_tenant, client_for):
    emulator.control.fault(tenant=crowd_tenant['tenant_id'], kind='graph', path=r'^/?\$batch', status=403, count=1)
    client, _clock = client_for(8)
    with pytest.raises(GraphError, match=r'Graph POST \$batch failed: HTTP 403'):
        client.batch(lookups(emulator, crowd_tenant))


def test_a_session_without_clone_runs_the_calls_one_after_the_other(emulator, crowd_tenant):
    token = emulator.control.token(crowd_tenant['tenant_id'], crowd_tenant['client_id'])

    class PlainSession:
        """Not an EntraSession: no clone(), so no worker may share it."""

        def __init__(self) -> None:
            self.inner = EntraSession(crowd_tenant['ca_bundle'], 10)
            self.threads: set[int] = set()

        def request(self, *args, **kwargs):
            self.threads.add(threading.get_ident())
            return self.inner.request(*args, **kwargs)

    session = PlainSession()
    client = GraphClient(session, crowd_tenant['graph_endpoint'], 'v1.0', token, timeout=10, max_retries=0)
    results = client.batch(lookups(emulator, crowd_tenant))
    assert results['u1'].status == 200 and session.threads == {threading.get_ident()}


def test_get_by_ids_pages_in_parallel(emulator, crowd_tenant, client_for):
    ids = ['%08x-0000-4000-8000-000000000000' % number for number in range(2500)]
    known = sorted(user['id'] for user in emulator.control.state(crowd_tenant['tenant_id'])['users'])[:5]
    client, _clock = client_for(8)
    since = emulator.control.last_seq()
    assert set(PrincipalResolver(client).lookup_ids(ids + known)) == set(known)
    assert [entry['path'] for entry in log(emulator, crowd_tenant, since, 'graph')] == ['/v1.0/directoryObjects/getByIds'] * 3


def test_five_thousand_names_take_250_batches_and_nothing_else(emulator, tenant):
    state = emulator.control.state(tenant['tenant_id'])
    state['generated_users'] = [{'count': 5000, 'userPrincipalName': 'member{n:04d}@contoso.com', 'displayName': 'Member {n}'}]
    emulator.control.new_tenant(tenant['tenant_id'], state=state)
    settings = settings_from_params({'tenant_id': tenant['tenant_id'], 'client_id': tenant['client_id'], 'client_secret': tenant['client_secret'],
                                     'authority_host': emulator.url, 'graph_endpoint': emulator.url, 'ca_bundle': emulator.ca_bundle})
    token = emulator.control.token(tenant['tenant_id'], tenant['client_id'])
    client = GraphClient(build_session(settings), settings.graph_endpoint, 'v1.0', token, timeout=30, max_retries=5)
    upns = ['member%04d@contoso.com' % number for number in range(1, 5001)]
    since = emulator.control.last_seq()
    resolved = PrincipalResolver(client).resolve(upns, [])
    assert len(set(resolved.user_ids.values())) == 5000
    calls = log(emulator, tenant, since, 'graph')
    assert [entry['path'] for entry in calls] == ['/v1.0/$batch'] * 250
    assert len(log(emulator, tenant, since, 'batch-item')) == 5000
