# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Reading and writing the policy against the emulator, with a real GraphClient (msal login, HTTPS)."""

from __future__ import annotations

import dataclasses
import json
import pathlib

import pytest

from ansible_collections.entra.autopilot.plugins.module_utils._errors import EntraError
from ansible_collections.entra.autopilot.plugins.module_utils._graph_client import GraphClient, GraphError
from ansible_collections.entra.autopilot.plugins.module_utils._policy import (
    UPDATABLE_PROPERTIES,
    Membership,
    PolicyFormatError,
    parse_policy,
)
from ansible_collections.entra.autopilot.plugins.module_utils._policy_store import POLICY_PATH, PolicyStore
from ansible_collections.entra.autopilot.tests.unit.plugins.module_utils.emulator_graph import graph_client

FIXTURES = pathlib.Path(__file__).parent / 'fixtures'
POLICY_URL_PATH = '/v1.0/' + POLICY_PATH
MEGAN = 'cd4e460e-f211-4a48-827a-82c054036213'
DIEGO_DELETED = '845f4493-b41a-4e1b-8640-d31c1282cb20'
ALEX = '158bda81-2b50-4c46-92a9-ed995f53b63b'
TECHNICIANS = '6cd0d409-6780-4876-ae1c-fea043980712'


@pytest.fixture
def graph(emulator, tenant) -> GraphClient:
    return graph_client(emulator, tenant, max_retries=0)


@pytest.fixture
def graph_log(emulator, tenant, graph):
    """A function returning the Graph requests logged for the tenant since the client was built."""
    mark = emulator.control.last_seq()
    return lambda: [entry for entry in emulator.control.log(tenant=tenant['tenant_id'], since=mark) if entry['kind'] == 'graph']


def requests_made(log) -> list[tuple[str, str]]:
    return [(entry['method'], entry['path']) for entry in log]


def test_read_returns_the_raw_policy_and_its_model(emulator, tenant, graph, graph_log):
    raw, policy = PolicyStore(graph).read()
    stored = emulator.control.state(tenant['tenant_id'])['policy']
    assert {key: raw[key] for key in UPDATABLE_PROPERTIES} == {key: stored[key] for key in UPDATABLE_PROPERTIES}
    assert policy == parse_policy(raw)
    # the demo Selected list holds a deleted user's id: it is read, not dropped
    assert policy.allowed_to_join == Membership('selected', {MEGAN, DIEGO_DELETED}, {TECHNICIANS})
    assert requests_made(graph_log()) == [('GET', POLICY_URL_PATH)]


def test_write_sends_the_full_policy_with_only_the_change_and_verifies_it(emulator, tenant, graph, graph_log):
    store = PolicyStore(graph)
    raw, policy = store.read()
    after = store.write(raw, dataclasses.replace(policy, user_device_quota=20), ['user_device_quota'])

    put = [entry for entry in graph_log() if entry['method'] == 'PUT']
    assert len(put) == 1 and put[0]['status'] == 200
    expected = {key: raw[key] for key in raw if key in UPDATABLE_PROPERTIES}
    expected['userDeviceQuota'] = 20
    assert put[0]['body'] == expected  # every other field exactly as read, nothing read-only
    # the PUT answer had a body: it is what was verified and returned, without another GET
    assert requests_made(graph_log()) == [('GET', POLICY_URL_PATH), ('PUT', POLICY_URL_PATH)]
    assert after['userDeviceQuota'] == 20
    assert parse_policy(after) == dataclasses.replace(policy, user_device_quota=20)
    assert emulator.control.state(tenant['tenant_id'])['policy']['userDeviceQuota'] == 20


def test_write_keeps_a_deleted_id_and_adds_a_member(emulator, tenant, graph, graph_log):
    store = PolicyStore(graph)
    raw, policy = store.read()
    joined = policy.allowed_to_join
    desired = dataclasses.replace(policy, allowed_to_join=Membership('selected', joined.users | {ALEX}, joined.groups))
    after = store.write(raw, desired, ['allowed_to_join'])
    put_body = [entry for entry in graph_log() if entry['method'] == 'PUT'][0]['body']
    assert put_body['azureADJoin']['allowedToJoin']['users'] == raw['azureADJoin']['allowedToJoin']['users'] + [ALEX]
    assert put_body['azureADJoin']['localAdmins'] == raw['azureADJoin']['localAdmins']
    assert put_body['azureADRegistration'] == raw['azureADRegistration']
    assert parse_policy(after).allowed_to_join == desired.allowed_to_join


def test_write_that_does_not_take_effect_is_an_error_naming_the_difference(emulator, tenant, graph, graph_log):
    store = PolicyStore(graph)
    raw, policy = store.read()
    # Graph answers 204 without applying the change: the store reads the policy again and sees it unchanged
    emulator.control.fault(tenant=tenant['tenant_id'], method='PUT', path='^/policies/deviceRegistrationPolicy$', status=204, body='', count=1)
    try:
        with pytest.raises(EntraError) as caught:
            store.write(raw, dataclasses.replace(policy, user_device_quota=20, laps_enabled=True), ['user_device_quota', 'laps_enabled'])
    finally:
        emulator.control.clear_faults()
    assert caught.value.details['differences'] == ['user_device_quota: expected 20, found 50', 'laps_enabled: expected true, found false']
    assert 'user_device_quota: expected 20, found 50; laps_enabled: expected true, found false' in str(caught.value)
    assert caught.value.details['policy']['userDeviceQuota'] == 50
    assert requests_made(graph_log()) == [('GET', POLICY_URL_PATH), ('PUT', POLICY_URL_PATH), ('GET', POLICY_URL_PATH)]


def test_put_answer_that_lacks_the_change_is_an_error_without_another_read(emulator, tenant, graph, graph_log):
    store = PolicyStore(graph)
    raw, policy = store.read()
    # Graph answers 200 with a policy in which another writer's list replaced ours
    emulator.control.fault(tenant=tenant['tenant_id'], method='PUT', path='^/policies/deviceRegistrationPolicy$', status=200, body=raw,
                           count=1)
    desired = dataclasses.replace(policy, allowed_to_join=Membership('selected', policy.allowed_to_join.users | {ALEX},
                                                                     policy.allowed_to_join.groups))
    try:
        with pytest.raises(EntraError, match='differs from what was requested: allowed_to_join users: missing %s' % ALEX):
            store.write(raw, desired, ['allowed_to_join'])
    finally:
        emulator.control.clear_faults()
    assert requests_made(graph_log()) == [('GET', POLICY_URL_PATH), ('PUT', POLICY_URL_PATH)]


def test_only_the_requested_fields_are_verified(emulator, tenant, graph):
    store = PolicyStore(graph)
    raw, policy = store.read()
    emulator.control.fault(tenant=tenant['tenant_id'], method='PUT', path='^/policies/deviceRegistrationPolicy$', status=204, body='', count=1)
    try:
        after = store.write(raw, dataclasses.replace(policy, user_device_quota=20), ['laps_enabled'])
    finally:
        emulator.control.clear_faults()
    assert after['userDeviceQuota'] == 50


def test_rejected_write_raises_the_graph_error(emulator, tenant, graph):
    store = PolicyStore(graph)
    raw, policy = store.read()
    with pytest.raises(GraphError, match='HTTP 400'):
        # an id that names no object: Graph rejects the whole PUT
        store.write(raw, dataclasses.replace(policy, allowed_to_join=Membership('selected', {'00000000-0000-4000-8000-000000000bad'})),
                    ['allowed_to_join'])
    assert emulator.control.state(tenant['tenant_id'])['policy']['azureADJoin'] == raw['azureADJoin']


def test_retired_schema_from_the_tenant_fails_the_read(emulator, tenant, graph):
    emulator.control.set_policy(tenant['tenant_id'], json.loads((FIXTURES / 'legacy_get_E.json').read_text()))
    with pytest.raises(PolicyFormatError, match='retired pre-September-2023 schema'):
        PolicyStore(graph).read()


def test_unknown_membership_type_from_the_tenant_fails_the_read(emulator, tenant, graph):
    policy = emulator.control.state(tenant['tenant_id'])['policy']
    policy['azureADJoin']['allowedToJoin'] = {'@odata.type': '#microsoft.graph.conditionalDeviceRegistrationMembership'}
    emulator.control.set_policy(tenant['tenant_id'], policy)
    with pytest.raises(PolicyFormatError, match=r'azureADJoin\.allowedToJoin\.@odata\.type.*conditionalDeviceRegistrationMembership'):
        PolicyStore(graph).read()
