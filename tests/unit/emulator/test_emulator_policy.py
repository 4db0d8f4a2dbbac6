# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""GET and PUT /policies/deviceRegistrationPolicy: the stored object and the documented PUT rules."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path

import jsonschema
import pytest
from graph_emulator.testing import DEMO_IDS, POLICY_PATH, UPDATABLE, GraphSession

ALL = '#microsoft.graph.allDeviceRegistrationMembership'
ENUMERATED = '#microsoft.graph.enumeratedDeviceRegistrationMembership'
NONE = '#microsoft.graph.noDeviceRegistrationMembership'
OPENAPI = Path(__file__).resolve().parent.parent / 'plugins' / 'module_utils' / 'fixtures' / 'deviceRegistrationPolicy.openapi.json'


def _validator() -> jsonschema.Draft202012Validator:
    """The OpenAPI component schemas as JSON Schema, minus `additionalProperties: {type: object}` (graph-contract.md s.9)."""
    spec = json.loads(OPENAPI.read_text(encoding='utf-8'))

    def convert(node):
        if isinstance(node, list):
            return [convert(item) for item in node]
        if not isinstance(node, dict):
            return node
        out = {key: convert(value) for key, value in node.items()
               if not key.startswith('x-') and not (key == 'additionalProperties' and value == {'type': 'object'})}
        if out.pop('nullable', False) and 'type' in out:
            out['type'] = [out['type'], 'null']
        if '$ref' in out:
            out['$ref'] = out['$ref'].replace('#/components/schemas/', '#/$defs/')
        return out

    schemas = convert(spec['components']['schemas'])
    mapping = spec['info']['x-provenance']['discriminator']['mapping']
    membership = {'type': 'object', 'required': ['@odata.type'], 'properties': {'@odata.type': {'enum': sorted(mapping)}},
                  'allOf': [{'if': {'properties': {'@odata.type': {'const': name}}},
                             'then': {'$ref': ref.replace('#/components/schemas/', '#/$defs/')}} for name, ref in sorted(mapping.items())]}
    schemas['membership'] = membership
    schemas['microsoft.graph.azureADJoinPolicy']['properties']['allowedToJoin'] = {'$ref': '#/$defs/membership'}
    schemas['microsoft.graph.azureADRegistrationPolicy']['properties']['allowedToRegister'] = {'$ref': '#/$defs/membership'}
    schemas['microsoft.graph.localAdminSettings']['properties']['registeringUsers'] = {'$ref': '#/$defs/membership'}
    return jsonschema.Draft202012Validator({'$defs': schemas, '$ref': '#/$defs/microsoft.graph.deviceRegistrationPolicy'})


VALIDATOR = _validator()


def _assert_schema_valid(body: dict) -> None:
    errors = ['%s: %s' % ('/'.join(map(str, error.path)), error.message) for error in VALIDATOR.iter_errors(body)]
    assert not errors, errors


def _error(response, code: str = 'invalid_request', status: int = 400) -> str:
    assert response.status_code == status, response.text
    assert response.json()['error']['code'] == code, response.text
    return response.json()['error']['message']


def test_get_returns_the_stored_object(emulator, tenant, graph):
    policy = graph.policy()
    assert list(policy)[:4] == ['@odata.context', 'id', 'displayName', 'description']
    assert policy['@odata.context'] == emulator.url + '/v1.0/$metadata#policies/deviceRegistrationPolicy/$entity'
    assert policy['id'] == 'deviceRegistrationPolicy'
    stored = emulator.control.state(tenant['tenant_id'])['policy']
    assert {k: v for k, v in policy.items() if k != '@odata.context'} == stored
    join = policy['azureADJoin']['allowedToJoin']
    assert join['@odata.type'] == ENUMERATED
    assert join['users'] == [DEMO_IDS['megan'], DEMO_IDS['diego_deleted']] and join['groups'] == [DEMO_IDS['technicians']]
    assert policy['userDeviceQuota'] == 50 and policy['multiFactorAuthConfiguration'] == 'notRequired'
    assert policy['azureADRegistration'] == {'isAdminConfigurable': False, 'allowedToRegister': {'@odata.type': ALL}}
    assert policy['azureADJoin']['localAdmins']['registeringUsers']['users'] == [DEMO_IDS['adele']]
    assert policy['localAdminPassword'] == {'isEnabled': False}
    _assert_schema_valid(policy)


def test_beta_path(emulator, graph_as):
    beta = graph_as('automation', version='beta')
    policy = beta.policy()
    assert policy['@odata.context'].startswith(emulator.url + '/beta/$metadata#')
    body = {name: policy[name] for name in UPDATABLE}
    body['userDeviceQuota'] = 7
    assert beta.put(POLICY_PATH, json=body).json()['userDeviceQuota'] == 7


def test_put_round_trip(emulator, tenant, graph):
    body = graph.put_body()
    body['userDeviceQuota'] = 25
    body['multiFactorAuthConfiguration'] = 'required'
    body['localAdminPassword'] = {'isEnabled': True}
    body['azureADJoin']['allowedToJoin'] = {'@odata.type': ENUMERATED, 'users': [DEMO_IDS['sean'], DEMO_IDS['diego_deleted']],
                                            'groups': [DEMO_IDS['oreilly'], DEMO_IDS['devices_group']]}
    body['azureADJoin']['localAdmins'] = {'enableGlobalAdmins': False, 'registeringUsers': {'@odata.type': NONE}}
    _assert_schema_valid(body)
    response = graph.put(POLICY_PATH, json=body)
    assert response.status_code == 200, response.text
    stored = response.json()
    _assert_schema_valid(stored)
    assert '@odata.context' not in stored and stored['id'] == 'deviceRegistrationPolicy'
    for name in UPDATABLE:
        assert stored[name] == body[name], name
    assert {k: v for k, v in graph.policy().items() if k != '@odata.context'} == stored
    assert emulator.control.state(tenant['tenant_id'])['policy'] == stored


@pytest.mark.parametrize('name, label', [('userDeviceQuota', 'quota'), ('multiFactorAuthConfiguration', 'multiFactorAuthConfiguration'),
                                         ('azureADRegistration', 'azureADRegistration'), ('azureADJoin', 'azureADJoin'),
                                         ('localAdminPassword', 'localAdminPassword')])
def test_missing_updatable_property(graph, name, label):
    before = graph.policy()
    body = graph.put_body()
    del body[name]
    assert _error(graph.put(POLICY_PATH, json=body)) == 'Tenant registration policy is missing a value for %s' % label
    body = graph.put_body()
    body[name] = None
    _error(graph.put(POLICY_PATH, json=body))
    assert graph.policy() == before


@pytest.mark.parametrize('where', ['allowedToJoin', 'registeringUsers'])
@pytest.mark.parametrize('membership, code', [
    ({'@odata.type': '#microsoft.graph.someDeviceRegistrationMembership'}, 'BadRequest'),
    ({'users': [DEMO_IDS['adele']], 'groups': []}, 'invalid_request'),
    ({'@odata.type': ALL, 'users': [DEMO_IDS['adele']]}, 'BadRequest'),
    ({'@odata.type': ENUMERATED, 'users': ['AdeleV@contoso.com'], 'groups': []}, 'invalid_request'),
    ({'@odata.type': ENUMERATED, 'users': [str(uuid.uuid4())], 'groups': []}, 'invalid_request'),
    ({'@odata.type': ENUMERATED, 'users': [DEMO_IDS['technicians']], 'groups': []}, 'invalid_request'),
    ({'@odata.type': ENUMERATED, 'users': [], 'groups': [DEMO_IDS['adele']]}, 'invalid_request'),
    ({'@odata.type': ENUMERATED, 'users': [], 'groups': ['Autopilot Technicians']}, 'invalid_request'),
    ({'@odata.type': ENUMERATED, 'users': [DEMO_IDS['device']], 'groups': []}, 'invalid_request'),
])
def test_invalid_membership_rejected(graph, where, membership, code):
    before = graph.policy()
    body = graph.put_body()
    if where == 'allowedToJoin':
        body['azureADJoin']['allowedToJoin'] = membership
    else:
        body['azureADJoin']['localAdmins']['registeringUsers'] = membership
    _error(graph.put(POLICY_PATH, json=body), code)
    assert graph.policy() == before


def test_deleted_id_stays_valid_only_while_listed(graph):
    deleted = DEMO_IDS['diego_deleted']
    body = graph.put_body()
    body['userDeviceQuota'] = 30  # the deleted id is carried as read: accepted
    assert graph.put(POLICY_PATH, json=body).status_code == 200
    body['azureADJoin']['allowedToJoin']['users'] = [DEMO_IDS['megan']]  # removing it works
    assert graph.put(POLICY_PATH, json=body).status_code == 200
    body['azureADJoin']['allowedToJoin']['users'] = [DEMO_IDS['megan'], deleted]  # adding it back does not
    assert deleted in _error(graph.put(POLICY_PATH, json=body))
    # nor may it move to another list
    body = graph.put_body()
    body['azureADJoin']['localAdmins']['registeringUsers']['users'].append(deleted)
    _error(graph.put(POLICY_PATH, json=body))


def test_ids_keep_their_case_and_order(graph):
    body = graph.put_body()
    users = [DEMO_IDS['sean'].upper(), DEMO_IDS['adele']]
    body['azureADJoin']['allowedToJoin'] = {'@odata.type': ENUMERATED, 'users': users, 'groups': []}
    assert graph.put(POLICY_PATH, json=body).json()['azureADJoin']['allowedToJoin']['users'] == users


def test_enumerated_without_lists_and_other_scopes(graph):
    body = graph.put_body()
    body['azureADJoin']['allowedToJoin'] = {'@odata.type': ENUMERATED}
    assert graph.put(POLICY_PATH, json=body).json()['azureADJoin']['allowedToJoin'] == {'@odata.type': ENUMERATED, 'users': [], 'groups': []}
    for scope in (ALL, NONE, ALL.lstrip('#')):
        body['azureADJoin']['allowedToJoin'] = {'@odata.type': scope}
        stored = graph.put(POLICY_PATH, json=body).json()
        assert stored['azureADJoin']['allowedToJoin'] == {'@odata.type': '#' + scope.lstrip('#')}


@pytest.mark.parametrize('value', ['0', '1', 'unknownFutureValue', 'Required', 0, True])
def test_mfa_must_be_named(graph, value):
    body = graph.put_body()
    body['multiFactorAuthConfiguration'] = value
    _error(graph.put(POLICY_PATH, json=body), 'BadRequest')


@pytest.mark.parametrize('value, code', [(-1, 'invalid_request'), ('10', 'BadRequest'), (True, 'BadRequest'), (2 ** 31, 'invalid_request')])
def test_quota_values(graph, value, code):
    body = graph.put_body()
    body['userDeviceQuota'] = value
    _error(graph.put(POLICY_PATH, json=body), code)


@pytest.mark.parametrize('value', [0, 100, 2147483647])
def test_quota_accepted_as_sent(graph, value):
    body = graph.put_body()
    body['userDeviceQuota'] = value
    assert graph.put(POLICY_PATH, json=body).json()['userDeviceQuota'] == value


def test_is_admin_configurable_writes_are_ignored(graph):
    body = graph.put_body()
    body['azureADJoin']['isAdminConfigurable'] = False
    body['azureADRegistration']['isAdminConfigurable'] = True
    stored = graph.put(POLICY_PATH, json=body).json()
    assert stored['azureADJoin']['isAdminConfigurable'] is True
    assert stored['azureADRegistration']['isAdminConfigurable'] is False


def test_registration_locked_while_intune_is_enabled(emulator, graph):
    body = graph.put_body()
    body['azureADRegistration']['allowedToRegister'] = {'@odata.type': NONE}
    assert 'Intune' in _error(graph.put(POLICY_PATH, json=body))


def test_registration_changes_allowed_without_intune(emulator, tenant, graph):
    state = emulator.control.state(tenant['tenant_id'])
    state['tenant']['intune_enabled'] = False
    state['policy']['azureADRegistration']['isAdminConfigurable'] = True
    emulator.control.new_tenant(tenant['tenant_id'], state=state)
    body = graph.put_body()
    body['azureADRegistration']['allowedToRegister'] = {'@odata.type': ENUMERATED, 'users': [DEMO_IDS['adele']], 'groups': []}
    stored = graph.put(POLICY_PATH, json=body).json()
    assert stored['azureADRegistration']['allowedToRegister']['users'] == [DEMO_IDS['adele']]


def test_locked_join_block(emulator):
    tenant_id = str(uuid.uuid4())
    credentials = emulator.control.new_tenant(tenant_id, seed='locked')
    graph = GraphSession(emulator.url, emulator.ca_bundle, emulator.control.token(tenant_id, credentials['client_id']))
    body = graph.put_body()
    body['userDeviceQuota'] = 5  # other blocks may change
    assert graph.put(POLICY_PATH, json=body).status_code == 200
    body['azureADJoin']['allowedToJoin'] = {'@odata.type': NONE}
    assert 'isAdminConfigurable' in _error(graph.put(POLICY_PATH, json=body))
    emulator.control.delete_tenant(tenant_id)


def test_read_only_fields_are_ignored(graph):
    policy = graph.policy()
    body = copy.deepcopy(policy)
    body.update({'id': 'somethingElse', 'displayName': 'Renamed', 'description': 'Changed', '@odata.type': '#microsoft.graph.deviceRegistrationPolicy'})
    body['userDeviceQuota'] = 12
    stored = graph.put(POLICY_PATH, json=body).json()
    assert (stored['id'], stored['displayName'], stored['description']) == (policy['id'], policy['displayName'], policy['description'])
    assert stored['userDeviceQuota'] == 12


def test_unknown_properties_rejected_legacy_ones_ignored(graph):
    body = graph.put_body()
    body['azureADJoin']['allowedtojoin'] = body['azureADJoin']['allowedToJoin']  # property names are case-sensitive
    assert 'allowedtojoin' in _error(graph.put(POLICY_PATH, json=body), 'BadRequest')
    body = graph.put_body()
    body['somethingNew'] = 1
    _error(graph.put(POLICY_PATH, json=body), 'BadRequest')
    body = graph.put_body()
    body['azureADJoin'].update({'appliesTo': '2', 'allowedUsers': [], 'allowedGroups': []})
    stored = graph.put(POLICY_PATH, json=body).json()
    assert 'appliesTo' not in stored['azureADJoin']


def test_legacy_seed_get_and_clean_put(emulator):
    tenant_id = str(uuid.uuid4())
    credentials = emulator.control.new_tenant(tenant_id, seed='legacy')
    graph = GraphSession(emulator.url, emulator.ca_bundle, emulator.control.token(tenant_id, credentials['client_id']))
    body = graph.put_body()
    assert body['multiFactorAuthConfiguration'] == '0' and 'localAdmins' not in body['azureADJoin']
    _error(graph.put(POLICY_PATH, json=body), 'BadRequest')  # "0" is not accepted back
    body['multiFactorAuthConfiguration'] = 'notRequired'
    stored = graph.put(POLICY_PATH, json=body).json()
    assert 'localAdmins' not in stored['azureADJoin'] and 'appliesTo' not in stored['azureADRegistration']
    emulator.control.delete_tenant(tenant_id)


def test_local_admins_partial_blocks(graph):
    body = graph.put_body()
    del body['azureADJoin']['localAdmins']  # absent: kept as stored
    stored = graph.put(POLICY_PATH, json=body).json()
    assert stored['azureADJoin']['localAdmins']['registeringUsers']['users'] == [DEMO_IDS['adele']]
    body['azureADJoin']['localAdmins'] = {'enableGlobalAdmins': False}  # registeringUsers absent: kept
    stored = graph.put(POLICY_PATH, json=body).json()
    assert stored['azureADJoin']['localAdmins'] == {'enableGlobalAdmins': False, 'registeringUsers': {
        '@odata.type': ENUMERATED, 'users': [DEMO_IDS['adele']], 'groups': []}}


@pytest.mark.parametrize('data, headers', [('{not json', {'Content-Type': 'application/json'}), ('', {'Content-Type': 'application/json'}),
                                           ('{}', {'Content-Type': 'text/plain'}), ('[1, 2]', {'Content-Type': 'application/json'})])
def test_unreadable_bodies(graph, data, headers):
    _error(graph.put(POLICY_PATH, data=data, headers=headers), 'BadRequest')


def test_set_policy_stores_odd_shapes_as_is(emulator, tenant, graph):
    odd = {'id': 'deviceRegistrationPolicy', 'userDeviceQuota': 3, 'multiFactorAuthConfiguration': '1',
           'azureADJoin': {'isAdminConfigurable': True, 'allowedToJoin': {'@odata.type': '#microsoft.graph.futureMembership'}}}
    emulator.control.set_policy(tenant['tenant_id'], odd)
    policy = graph.policy()
    assert {k: v for k, v in policy.items() if k != '@odata.context'} == odd
    emulator.control.reset(tenant['tenant_id'])
    assert graph.policy()['userDeviceQuota'] == 50
