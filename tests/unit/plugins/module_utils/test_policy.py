# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The policy model: parsing every documented body shape, the full PUT body, config and readable views."""

from __future__ import annotations

import copy
import dataclasses
import json
import pathlib

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.entra.autopilot.plugins.module_utils._policy import (
    SCOPE_ODATA_TYPES,
    UPDATABLE_PROPERTIES,
    JoinPolicy,
    Membership,
    PolicyFormatError,
    differences,
    parse_policy,
    render_put_body,
    to_config,
    to_readable,
)
from ansible_collections.entra.autopilot.plugins.module_utils._principals import Principal

FIXTURES = pathlib.Path(__file__).parent / 'fixtures'
ALL = SCOPE_ODATA_TYPES['all']
SELECTED = SCOPE_ODATA_TYPES['selected']
NONE = SCOPE_ODATA_TYPES['none']
U1, U2, U3 = ('3c8ef067-8b96-44de-b2ae-557dfa0f97a0', '11111111-1111-4111-8111-111111111111',
              '22222222-2222-4222-8222-222222222222')
G1, G2 = '44444444-4444-4444-8444-444444444444', '55555555-5555-4555-8555-555555555555'
READ_ONLY = ('@odata.context', 'id', 'displayName', 'description')


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


# --- the OpenAPI schema of the policy, made usable for validation ------------------------------------------------

def _schema_for_validation() -> dict:
    """The component schemas as JSON Schema 2020-12.

    As graph-contract.md section 9 explains, the generated schemas put ``additionalProperties: {type: object}`` on
    every object (including each allOf branch), which rejects every real payload; it is stripped. OpenAPI's
    ``nullable`` becomes a ``null`` type. Membership properties get the discriminator mapping recorded in
    ``info.x-provenance``: ``@odata.type`` is required, must be one of the mapped types, and selects the derived schema.
    """
    spec = json.loads((FIXTURES / 'deviceRegistrationPolicy.openapi.json').read_text())

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
    schemas['membership'] = {
        'type': 'object',
        'required': ['@odata.type'],
        'properties': {'@odata.type': {'enum': sorted(mapping)}},
        'allOf': [{'if': {'properties': {'@odata.type': {'const': odata_type}}},
                   'then': {'$ref': ref.replace('#/components/schemas/', '#/$defs/')}}
                  for odata_type, ref in sorted(mapping.items())],
    }
    membership_ref = {'$ref': '#/$defs/membership'}
    schemas['microsoft.graph.azureADJoinPolicy']['properties']['allowedToJoin'] = membership_ref
    schemas['microsoft.graph.azureADRegistrationPolicy']['properties']['allowedToRegister'] = membership_ref
    schemas['microsoft.graph.localAdminSettings']['properties']['registeringUsers'] = membership_ref
    return {'$schema': 'https://json-schema.org/draft/2020-12/schema', '$defs': schemas,
            '$ref': '#/$defs/microsoft.graph.deviceRegistrationPolicy'}


VALIDATOR = jsonschema.Draft202012Validator(_schema_for_validation())


def assert_valid_put_body(body: dict) -> None:
    assert list(body) and set(body) == set(UPDATABLE_PROPERTIES), 'a PUT body carries exactly the updatable properties'
    errors = sorted(VALIDATOR.iter_errors(body), key=lambda error: list(error.path))
    assert not errors, [('/'.join(map(str, error.path)), error.message) for error in errors]


def as_read(raw: dict) -> dict:
    """What an unchanged policy must render to: the updatable properties as read (legacy MFA values named)."""
    body = {key: copy.deepcopy(raw[key]) for key in raw if key in UPDATABLE_PROPERTIES}
    body['multiFactorAuthConfiguration'] = {'0': 'notRequired', '1': 'required'}.get(
        body['multiFactorAuthConfiguration'], body['multiFactorAuthConfiguration'])
    return body


class TestSchemaHelper:
    """The validator used below rejects what the schema forbids (so a passing body means something)."""

    def test_documented_put_example_is_valid(self):
        assert_valid_put_body(load('v1_put_request_B.json'))

    @pytest.mark.parametrize('mutate, where', [
        (lambda body: body.update(multiFactorAuthConfiguration='0'), 'multiFactorAuthConfiguration'),
        (lambda body: body.update(userDeviceQuota='50'), 'userDeviceQuota'),
        (lambda body: body['azureADJoin']['allowedToJoin'].update({'@odata.type': '#microsoft.graph.someMembership'}),
         'azureADJoin/allowedToJoin/@odata.type'),
        (lambda body: body['azureADJoin']['allowedToJoin'].pop('@odata.type'), 'azureADJoin/allowedToJoin'),
        (lambda body: body['azureADRegistration']['allowedToRegister'].update(users='not-a-list'),
         'azureADRegistration/allowedToRegister/users'),
        (lambda body: body['localAdminPassword'].update(isEnabled='yes'), 'localAdminPassword/isEnabled'),
    ])
    def test_invalid_bodies_are_rejected(self, mutate, where):
        body = load('v1_put_request_B.json')
        mutate(body)
        paths = ['/'.join(map(str, error.path)) for error in VALIDATOR.iter_errors(body)]
        assert where in paths


# --- every documented example --------------------------------------------------------------------------------------

READABLE_EXAMPLES = ['v1_get_A.json', 'v1_put_request_B.json', 'v1_put_response_B.json', 'beta_put_request_C.json',
                     'beta_put_response_C.json', 'beta_get_D.json', 'transition_get_F.json']


class TestDocumentedExamples:
    @pytest.mark.parametrize('name', READABLE_EXAMPLES)
    def test_round_trip_renders_the_policy_as_read(self, name):
        raw = load(name)
        policy = parse_policy(raw)
        body = render_put_body(raw, policy)
        assert body == as_read(raw)
        assert list(body) == [key for key in raw if key in UPDATABLE_PROPERTIES]
        assert not set(READ_ONLY) & set(body)
        assert parse_policy(body) == policy
        if name != 'transition_get_F.json':  # F carries its legacy keys as read; they are not in the schema
            assert_valid_put_body(body)

    def test_v1_get_example(self):
        policy = parse_policy(load('v1_get_A.json'))
        assert policy == JoinPolicy(allowed_to_join=Membership('all'), user_device_quota=2, require_mfa=False,
                                    local_admins_global=True, local_admins_registering=Membership('selected', {U1}),
                                    laps_enabled=False)

    def test_put_response_renders_the_documented_put_request(self):
        raw = load('v1_put_response_B.json')
        assert render_put_body(raw, parse_policy(raw)) == load('v1_put_request_B.json')

    def test_corrected_beta_put_example_equals_the_v1_one(self):
        # beta_put_*_C.json are (C) with the published trailing commas removed
        assert load('beta_put_request_C.json') == load('v1_put_request_B.json')
        assert load('beta_put_response_C.json') == load('v1_put_response_B.json')

    def test_documented_change_renders_the_documented_body(self):
        """Starting from the v1.0 GET example (A), the changes of the PUT example (B) give B's body, except
        azureADRegistration, which is always sent as read."""
        raw = load('v1_get_A.json')
        desired = dataclasses.replace(parse_policy(raw), local_admins_global=False, local_admins_registering=Membership('none'),
                                      laps_enabled=True)
        expected = load('v1_put_request_B.json')
        expected['azureADRegistration'] = raw['azureADRegistration']
        body = render_put_body(raw, desired)
        assert body == expected
        assert_valid_put_body(body)

    def test_beta_legacy_mfa_value_is_read_and_sent_as_a_name(self):
        raw = load('beta_get_D.json')
        assert raw['multiFactorAuthConfiguration'] == '0'
        policy = parse_policy(raw)
        assert policy.require_mfa is False
        assert policy.local_admins_global is None and policy.local_admins_registering is None
        assert render_put_body(raw, policy)['multiFactorAuthConfiguration'] == 'notRequired'
        body = render_put_body(raw, dataclasses.replace(policy, require_mfa=True))
        assert body['multiFactorAuthConfiguration'] == 'required'
        assert 'localAdmins' not in body['azureADJoin']

    def test_retired_schema_is_a_clear_error(self):
        with pytest.raises(PolicyFormatError) as caught:
            parse_policy(load('legacy_get_E.json'))
        message = str(caught.value)
        assert 'retired' in message and 'appliesTo' in message and 'api_version' in message
        assert caught.value.json_path == 'azureADJoin'

    def test_transition_shape_drops_legacy_join_keys_only_when_the_scope_changes(self):
        raw = load('transition_get_F.json')
        policy = parse_policy(raw)
        assert policy.allowed_to_join == Membership('selected', {'a6aebac8-1faf-4ebd-9a68-727fa53376f4'})
        unchanged = render_put_body(raw, dataclasses.replace(policy, user_device_quota=10))
        assert unchanged['azureADJoin'] == raw['azureADJoin']
        opened = render_put_body(raw, dataclasses.replace(policy, allowed_to_join=Membership('all')))
        assert opened['azureADJoin'] == {'isAdminConfigurable': True, 'allowedToJoin': {'@odata.type': ALL}}
        assert opened['azureADRegistration'] == raw['azureADRegistration']  # legacy keys there too: as read


# --- parse: never guess -------------------------------------------------------------------------------------------

def base_raw(**changes) -> dict:
    raw = load('v1_get_A.json')
    raw.update(changes)
    return raw


class TestParseErrors:
    @pytest.mark.parametrize('membership, seen', [
        ({'@odata.type': '#microsoft.graph.someFutureMembership'}, '"#microsoft.graph.someFutureMembership"'),
        ({'@odata.type': '#microsoft.graph.deviceRegistrationMembership'}, '"#microsoft.graph.deviceRegistrationMembership"'),
        ({'@odata.type': 7}, '7'),
        ({'@odata.type': None, 'users': []}, 'missing'),
        ({'users': [U1]}, 'missing'),
    ])
    def test_unknown_or_missing_join_type(self, membership, seen):
        raw = base_raw()
        raw['azureADJoin']['allowedToJoin'] = membership
        with pytest.raises(PolicyFormatError) as caught:
            parse_policy(raw)
        assert caught.value.json_path == 'azureADJoin.allowedToJoin.@odata.type'
        assert 'azureADJoin.allowedToJoin.@odata.type' in str(caught.value)
        assert seen in str(caught.value)
        assert 'refusing to guess' in str(caught.value)

    def test_unknown_registering_users_type(self):
        raw = base_raw()
        raw['azureADJoin']['localAdmins']['registeringUsers'] = {'@odata.type': '#microsoft.graph.everyone'}
        with pytest.raises(PolicyFormatError, match=r'azureADJoin\.localAdmins\.registeringUsers\.@odata\.type.*everyone'):
            parse_policy(raw)

    def test_missing_join_membership(self):
        raw = base_raw()
        del raw['azureADJoin']['allowedToJoin']
        with pytest.raises(PolicyFormatError, match=r'at azureADJoin\.allowedToJoin, expected a membership object'):
            parse_policy(raw)

    def test_capitalised_namespace_of_the_blog_examples_is_understood(self):
        raw = base_raw()
        raw['azureADJoin']['allowedToJoin'] = {'@odata.type': '#Microsoft.graph.enumeratedDeviceRegistrationMembership',
                                               'users': [U2.upper()], 'groups': []}
        assert parse_policy(raw).allowed_to_join == Membership('selected', {U2})
        assert render_put_body(raw, parse_policy(raw)) == as_read(raw)

    @pytest.mark.parametrize('value, expected', [('required', True), ('notRequired', False), ('1', True), ('0', False),
                                                 (1, True), (0, False)])
    def test_mfa_values(self, value, expected):
        assert parse_policy(base_raw(multiFactorAuthConfiguration=value)).require_mfa is expected

    @pytest.mark.parametrize('value', ['unknownFutureValue', '2'])
    def test_mfa_unknown_future_value_is_a_clear_error(self, value):
        with pytest.raises(PolicyFormatError, match='multiFactorAuthConfiguration.*newer than this API version'):
            parse_policy(base_raw(multiFactorAuthConfiguration=value))

    @pytest.mark.parametrize('value', [True, None, 'yes', ''])
    def test_mfa_other_values_are_errors(self, value):
        with pytest.raises(PolicyFormatError, match='multiFactorAuthConfiguration'):
            parse_policy(base_raw(multiFactorAuthConfiguration=value))

    @pytest.mark.parametrize('field', ['userDeviceQuota', 'multiFactorAuthConfiguration', 'azureADJoin',
                                       'azureADRegistration', 'localAdminPassword'])
    def test_missing_updatable_property_is_an_error_not_a_default(self, field):
        raw = base_raw()
        del raw[field]
        with pytest.raises(PolicyFormatError, match='at %s' % field):
            parse_policy(raw)

    @pytest.mark.parametrize('quota', ['50', 50.0, True, None])
    def test_quota_must_be_a_whole_number(self, quota):
        with pytest.raises(PolicyFormatError, match='userDeviceQuota'):
            parse_policy(base_raw(userDeviceQuota=quota))

    @pytest.mark.parametrize('quota', [0, 100, 101, 2147483647, -1])
    def test_quota_outside_the_portal_range_is_carried_as_read(self, quota):
        raw = base_raw(userDeviceQuota=quota)
        policy = parse_policy(raw)
        assert policy.user_device_quota == quota
        body = render_put_body(raw, dataclasses.replace(policy, laps_enabled=True))
        assert body['userDeviceQuota'] == quota

    def test_laps_must_be_a_boolean(self):
        with pytest.raises(PolicyFormatError, match=r'localAdminPassword\.isEnabled, expected true or false, found nothing'):
            parse_policy(base_raw(localAdminPassword={}))

    def test_ids_must_be_a_list_of_strings(self):
        raw = base_raw()
        raw['azureADJoin']['allowedToJoin'] = {'@odata.type': SELECTED, 'users': U1}
        with pytest.raises(PolicyFormatError, match=r'azureADJoin\.allowedToJoin\.users'):
            parse_policy(raw)

    def test_not_an_object(self):
        with pytest.raises(PolicyFormatError, match=r'at \$, expected a JSON object'):
            parse_policy(['not', 'a', 'policy'])


# --- render ---------------------------------------------------------------------------------------------------------

def selected_raw(users, groups, **extra) -> dict:
    raw = base_raw()
    raw['azureADJoin']['allowedToJoin'] = {'@odata.type': SELECTED, 'users': list(users), 'groups': list(groups), **extra}
    return raw


class TestRender:
    def test_read_only_fields_are_never_sent(self):
        raw = base_raw()
        raw['@odata.type'] = '#microsoft.graph.deviceRegistrationPolicy'
        body = render_put_body(raw, dataclasses.replace(parse_policy(raw), user_device_quota=20))
        assert list(body) == list(UPDATABLE_PROPERTIES)
        assert body['userDeviceQuota'] == 20

    def test_is_admin_configurable_and_registration_are_always_as_read(self):
        raw = base_raw()
        raw['azureADJoin']['isAdminConfigurable'] = False
        raw['azureADRegistration'] = {'isAdminConfigurable': False, 'allowedToRegister': {'@odata.type': ALL}, 'x': {'y': 1}}
        desired = JoinPolicy(Membership('selected', {U2}, {G1}), 7, True, False, Membership('none'), True)
        body = render_put_body(raw, desired)
        assert body['azureADJoin']['isAdminConfigurable'] is False
        assert body['azureADRegistration'] == raw['azureADRegistration']
        assert parse_policy(body) == desired
        assert_valid_put_body(body)

    def test_unknown_keys_inside_join_and_local_admins_are_carried(self):
        raw = base_raw()
        raw['azureADJoin']['futureSetting'] = {'enabled': True}
        raw['azureADJoin']['localAdmins']['futureAdmins'] = {'x': 1}
        raw['localAdminPassword']['futureLaps'] = {'days': 30}
        desired = dataclasses.replace(parse_policy(raw), allowed_to_join=Membership('none'), local_admins_global=False,
                                      local_admins_registering=Membership('all'), laps_enabled=True)
        body = render_put_body(raw, desired)
        assert body['azureADJoin']['futureSetting'] == {'enabled': True}
        assert body['azureADJoin']['localAdmins'] == {'enableGlobalAdmins': False, 'registeringUsers': {'@odata.type': ALL},
                                                      'futureAdmins': {'x': 1}}
        assert body['localAdminPassword'] == {'isEnabled': True, 'futureLaps': {'days': 30}}

    def test_local_admins_absent_stays_absent(self):
        raw = load('beta_get_D.json')
        body = render_put_body(raw, dataclasses.replace(parse_policy(raw), allowed_to_join=Membership('selected', {U1})))
        assert 'localAdmins' not in body['azureADJoin']

    def test_local_admins_absent_is_created_when_set(self):
        raw = load('beta_get_D.json')
        body = render_put_body(raw, dataclasses.replace(parse_policy(raw), local_admins_global=True,
                                                        local_admins_registering=Membership('selected', set(), {G1})))
        assert body['azureADJoin']['localAdmins'] == {
            'enableGlobalAdmins': True,
            'registeringUsers': {'@odata.type': SELECTED, 'users': [], 'groups': [G1]}}
        assert_valid_put_body(body)

    def test_adding_keeps_order_and_case_of_ids_read_and_appends_new_ones(self):
        raw = selected_raw([U3.upper(), U1], [G2], extraKey='kept')
        policy = parse_policy(raw)
        desired = dataclasses.replace(policy, allowed_to_join=Membership('selected', {U1, U2, U3}, {G2}))
        joined = render_put_body(raw, desired)['azureADJoin']['allowedToJoin']
        assert joined == {'@odata.type': SELECTED, 'users': [U3.upper(), U1, U2], 'groups': [G2], 'extraKey': 'kept'}

    def test_removing_keeps_the_rest_and_an_unchanged_list_stays_as_read(self):
        raw = selected_raw([U1, U2.upper(), U1, U3], [G2, G1.upper(), G2])
        desired = dataclasses.replace(parse_policy(raw), allowed_to_join=Membership('selected', {U1, U3}, {G1, G2}))
        joined = render_put_body(raw, desired)['azureADJoin']['allowedToJoin']
        assert joined['users'] == [U1, U3]
        assert joined['groups'] == [G2, G1.upper(), G2]  # same set: exactly as read

    def test_scope_changes(self):
        raw = selected_raw([U1], [G1])
        policy = parse_policy(raw)
        for scope, expected in (('all', {'@odata.type': ALL}), ('none', {'@odata.type': NONE})):
            body = render_put_body(raw, dataclasses.replace(policy, allowed_to_join=Membership(scope)))
            assert body['azureADJoin']['allowedToJoin'] == expected
            assert_valid_put_body(body)
        opened = base_raw()  # scope all
        body = render_put_body(opened, dataclasses.replace(parse_policy(opened), allowed_to_join=Membership('selected', {U2, U1}, {G1})))
        assert body['azureADJoin']['allowedToJoin'] == {'@odata.type': SELECTED, 'users': sorted([U1, U2]), 'groups': [G1]}

    def test_empty_selection_is_rendered_with_empty_lists(self):
        raw = base_raw()
        body = render_put_body(raw, dataclasses.replace(parse_policy(raw), allowed_to_join=Membership('selected')))
        assert body['azureADJoin']['allowedToJoin'] == {'@odata.type': SELECTED, 'users': [], 'groups': []}

    def test_raw_is_not_modified(self):
        raw = selected_raw([U1], [G1])
        before = copy.deepcopy(raw)
        render_put_body(raw, JoinPolicy(Membership('selected', {U2}), 1, True, None, None, True))
        assert raw == before


class TestMembership:
    def test_ids_are_lower_case_sets(self):
        assert Membership('selected', [U1.upper(), U1], (G1,)) == Membership('selected', {U1}, {G1})

    def test_only_selected_holds_ids(self):
        with pytest.raises(ValueError):
            Membership('all', {U1})
        with pytest.raises(ValueError):
            Membership('some')

    def test_empty_selection(self):
        assert Membership('selected').is_empty_selection
        assert not Membership('none').is_empty_selection


# --- views ----------------------------------------------------------------------------------------------------------

class TestViews:
    def test_config_round_trips_through_the_option_names(self):
        raw = selected_raw([U2, U1.upper()], [G2, G1])
        assert to_config(parse_policy(raw)) == {
            'allowed_to_join': 'selected', 'users': sorted([U1, U2]), 'groups': [G1, G2], 'user_device_quota': 2,
            'require_mfa': False,
            'local_admins': {'global_admins': True, 'registering_users': 'selected', 'users': [U1], 'groups': []},
            'laps_enabled': False,
        }

    def test_config_without_local_admins(self):
        assert to_config(parse_policy(load('beta_get_D.json')))['local_admins'] == {
            'global_admins': None, 'registering_users': None, 'users': [], 'groups': []}

    def test_readable_names_and_deleted_ids(self):
        policy = parse_policy(selected_raw([U1, U2], [G1]))
        names = {U1: Principal(U1, 'user', 'adele@contoso.com'), G1: Principal(G1, 'group', "O'Brien's team")}
        readable = to_readable(policy, names)
        assert readable['users'] == ['%s (deleted)' % U2, 'adele@contoso.com']
        assert readable['groups'] == ["O'Brien's team"]
        assert readable['local_admins']['users'] == ['adele@contoso.com']
        assert readable['allowed_to_join'] == 'selected'


class TestDifferences:
    def test_each_field_is_named(self):
        expected = JoinPolicy(Membership('selected', {U1, U2}, {G1}), 10, True, True, Membership('all'), True)
        actual = JoinPolicy(Membership('selected', {U1, U3}, {G1}), 5, False, None, Membership('none'), False)
        found = differences(expected, actual, ['allowed_to_join', 'user_device_quota', 'require_mfa',
                                               'local_admins_global', 'local_admins_registering', 'laps_enabled'])
        assert found == [
            'allowed_to_join users: missing %s; not expected %s' % (U2, U3),
            'user_device_quota: expected 10, found 5',
            'require_mfa: expected true, found false',
            'local_admins.global_admins: expected true, found not set',
            'local_admins.registering_users: expected all, found none',
            'laps_enabled: expected true, found false',
        ]

    def test_only_the_given_fields_are_compared(self):
        expected = JoinPolicy(Membership('all'), 10, True, True, None, True)
        actual = dataclasses.replace(expected, user_device_quota=3, allowed_to_join=Membership('none'))
        assert differences(expected, actual, ['require_mfa', 'laps_enabled']) == []
        assert differences(expected, actual, ['allowed_to_join']) == ['allowed_to_join: expected all, found none']

    def test_join_lists_by_their_option_names(self):
        expected = JoinPolicy(Membership('selected', {U1}, {G1}), 1, False, None, None, False)
        actual = dataclasses.replace(expected, allowed_to_join=Membership('selected', {U1}, set()))
        assert differences(expected, actual, ['users', 'groups']) == ['groups: missing %s' % G1]
        assert differences(expected, actual, ['allowed_to_join', 'users', 'groups']) == ['allowed_to_join groups: missing %s' % G1]

    def test_unknown_field_is_a_programming_error(self):
        policy = JoinPolicy(Membership('all'), 1, False, None, None, False)
        with pytest.raises(ValueError):
            differences(policy, policy, ['quota'])


# --- property-based: many random policies -------------------------------------------------------------------------

object_ids = st.builds(lambda value, upper: str(value).upper() if upper else str(value), st.uuids(), st.booleans())
id_lists = st.lists(object_ids, max_size=5).flatmap(
    lambda ids: st.permutations(ids + ids[: len(ids) // 2]))  # duplicates, in any order
extra_keys = st.dictionaries(st.sampled_from(['futureKey', 'x-note']), st.dictionaries(st.just('v'), st.integers()), max_size=1)


@st.composite
def membership_json(draw) -> dict:
    scope = draw(st.sampled_from(['all', 'selected', 'none']))
    body = {'@odata.type': SCOPE_ODATA_TYPES[scope]}
    if scope == 'selected':
        for key in ('users', 'groups'):
            if draw(st.integers(0, 3)):  # sometimes missing
                body[key] = draw(id_lists)
        body.update(draw(extra_keys))
    return body


@st.composite
def raw_policies(draw) -> dict:
    join = {'isAdminConfigurable': draw(st.booleans()), 'allowedToJoin': draw(membership_json())}
    if draw(st.booleans()):
        local_admins = {}
        if draw(st.booleans()):
            local_admins['enableGlobalAdmins'] = draw(st.booleans())
        if draw(st.booleans()):
            local_admins['registeringUsers'] = draw(membership_json())
        local_admins.update(draw(extra_keys))
        join['localAdmins'] = local_admins
    join.update(draw(extra_keys))
    return {
        '@odata.context': 'https://graph.microsoft.com/v1.0/$metadata#deviceRegistrationPolicy',
        'id': 'deviceRegistrationPolicy',
        'displayName': 'Device Registration Policy',
        'description': 'Tenant-wide policy',
        'userDeviceQuota': draw(st.integers(-2 ** 31, 2 ** 31 - 1)),
        'multiFactorAuthConfiguration': draw(st.sampled_from(['required', 'notRequired', '0', '1'])),
        'azureADRegistration': {'isAdminConfigurable': draw(st.booleans()), 'allowedToRegister': draw(membership_json())},
        'azureADJoin': join,
        'localAdminPassword': {'isEnabled': draw(st.booleans()), **draw(extra_keys)},
    }


memberships = st.builds(
    lambda scope, users, groups: Membership(scope, users if scope == 'selected' else (), groups if scope == 'selected' else ()),
    st.sampled_from(['all', 'selected', 'none']), st.frozensets(object_ids, max_size=4), st.frozensets(object_ids, max_size=4))

CHANGES = {
    'allowed_to_join': memberships,
    'user_device_quota': st.integers(0, 100),
    'require_mfa': st.booleans(),
    'local_admins_global': st.booleans(),
    'local_admins_registering': memberships,
    'laps_enabled': st.booleans(),
}

# Where each field lives in the body: (top-level property, key inside it or None for the whole value).
FIELD_LOCATIONS = {
    'allowed_to_join': ('azureADJoin', 'allowedToJoin'),
    'user_device_quota': ('userDeviceQuota', None),
    'require_mfa': ('multiFactorAuthConfiguration', None),
    'local_admins_global': ('azureADJoin', 'localAdmins'),
    'local_admins_registering': ('azureADJoin', 'localAdmins'),
    'laps_enabled': ('localAdminPassword', 'isEnabled'),
}

PROPERTY_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class TestRandomPolicies:
    @PROPERTY_SETTINGS
    @given(raw=raw_policies())
    def test_unchanged_policy_renders_the_body_as_read(self, raw):
        policy = parse_policy(raw)
        body = render_put_body(raw, policy)
        assert body == as_read(raw)
        assert parse_policy(body) == policy
        assert_valid_put_body(body)

    @PROPERTY_SETTINGS
    @given(raw=raw_policies(), data=st.data())
    def test_changing_one_field_leaves_every_other_field_as_read(self, raw, data):
        field = data.draw(st.sampled_from(sorted(CHANGES)))
        before = parse_policy(raw)
        desired = dataclasses.replace(before, **{field: data.draw(CHANGES[field])})
        body = render_put_body(raw, desired)
        read = as_read(raw)

        assert parse_policy(body) == desired
        assert_valid_put_body(body)
        assert body['azureADRegistration'] == raw['azureADRegistration']
        assert body['azureADJoin']['isAdminConfigurable'] == raw['azureADJoin']['isAdminConfigurable']
        prop, key = FIELD_LOCATIONS[field]
        for other in UPDATABLE_PROPERTIES:
            if other != prop:
                assert body[other] == read[other], other
        if key is not None:
            assert {k: v for k, v in body[prop].items() if k != key} == {k: v for k, v in read[prop].items() if k != key}
        if field.startswith('local_admins') and 'localAdmins' in raw['azureADJoin']:
            # the other half of localAdmins, and its unknown keys, stay as read
            other_key = 'registeringUsers' if field == 'local_admins_global' else 'enableGlobalAdmins'
            local_read, local_body = raw['azureADJoin']['localAdmins'], body['azureADJoin']['localAdmins']
            assert local_body.get(other_key) == local_read.get(other_key)
            assert {k for k in local_body if k not in ('registeringUsers', 'enableGlobalAdmins')} == \
                {k for k in local_read if k not in ('registeringUsers', 'enableGlobalAdmins')}
        if before == desired:
            assert body == read

    @PROPERTY_SETTINGS
    @given(raw=raw_policies(), data=st.data())
    def test_ids_are_sets(self, raw, data):
        """Reordering, duplicating and re-casing the ids read changes neither the model nor the body sent back."""
        shuffled = copy.deepcopy(raw)
        for holder in (shuffled['azureADJoin'].get('allowedToJoin'), (shuffled['azureADJoin'].get('localAdmins') or {}).get('registeringUsers')):
            for key in ('users', 'groups'):
                if holder and holder.get(key):
                    ids = data.draw(st.permutations(holder[key]))
                    holder[key] = [value.swapcase() for value in ids] + ids[:1]
        assert parse_policy(shuffled) == parse_policy(raw)
        assert render_put_body(shuffled, parse_policy(raw)) == as_read(shuffled)


def test_only_object_ids_are_ever_added():
    raw = selected_raw(['legacy-non-guid-value'], [])
    policy = parse_policy(raw)
    # a value already stored is carried as it is
    body = render_put_body(raw, dataclasses.replace(policy, allowed_to_join=Membership('selected', {'legacy-non-guid-value', U1})))
    assert body['azureADJoin']['allowedToJoin']['users'] == ['legacy-non-guid-value', U1]
    with pytest.raises(ValueError, match='adele@contoso.com'):
        render_put_body(raw, dataclasses.replace(policy, allowed_to_join=Membership('selected', {'adele@contoso.com'})))
