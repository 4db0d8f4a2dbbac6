# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The option rules of entra_device_join_policy, and the preservation of every field a task does not set."""

from __future__ import annotations

import copy
import random
import uuid

import pytest

from ansible_collections.entra.autopilot.plugins.module_utils._policy import (
    SCOPES,
    JoinPolicy,
    Membership,
    parse_policy,
    render_put_body,
    to_config,
)
from ansible_collections.entra.autopilot.plugins.module_utils._policy_options import (
    MFA_WARNING,
    OptionsError,
    PolicyOptions,
    check_join_configurable,
    entry_ids,
    groups_added,
    policy_ids,
)

U1, U2, U3 = 'aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-000000000002', 'aaaaaaaa-0000-0000-0000-000000000003'
G1, G2 = 'bbbbbbbb-0000-0000-0000-000000000001', 'bbbbbbbb-0000-0000-0000-000000000002'


def policy(join: Membership, **changes) -> JoinPolicy:
    values = dict(allowed_to_join=join, user_device_quota=50, require_mfa=False, local_admins_global=True,
                  local_admins_registering=Membership('all'), laps_enabled=False)
    values.update(changes)
    return JoinPolicy(**values)


def options(**params) -> PolicyOptions:
    return PolicyOptions.from_params(params)


def identity(*entries: str) -> dict[str, str]:
    """Entries that are ids resolve to themselves (what the resolver answers for existing ids)."""
    return {entry: entry.lower() for entry in entries}


SELECTED = Membership('selected', frozenset({U1}), frozenset({G1}))
ALL_IDS = identity(U1, U2, U3, G1, G2)


def problems_of(opts: PolicyOptions, current: JoinPolicy) -> list[str]:
    with pytest.raises(OptionsError) as caught:
        opts.check(current)
    assert str(caught.value).startswith('Invalid options, nothing was changed: ')
    return caught.value.problems


# --- nothing asked, nothing changed -----------------------------------------------------------------------------

def test_no_options_leave_the_policy_as_it_is():
    current = policy(SELECTED)
    opts = options()
    opts.check(current)
    assert opts.fields() == []
    assert opts.entries() == ([], [])
    assert opts.desired(current, {}, {}) == current
    assert opts.warnings(current, current) == []


# --- join scope transitions -------------------------------------------------------------------------------------

def test_all_to_selected_with_users_and_groups():
    current = policy(Membership('all'))
    opts = options(allowed_to_join='selected', users=[U1, U2], groups=[G1])
    opts.check(current)
    desired = opts.desired(current, ALL_IDS, ALL_IDS)
    assert desired.allowed_to_join == Membership('selected', frozenset({U1, U2}), frozenset({G1}))
    assert desired.user_device_quota == current.user_device_quota
    assert desired.local_admins_registering == current.local_admins_registering
    assert opts.fields() == ['allowed_to_join']


@pytest.mark.parametrize('scope', ['all', 'none'])
def test_selected_to_all_or_none_drops_the_lists(scope):
    current = policy(SELECTED)
    opts = options(allowed_to_join=scope)
    opts.check(current)
    assert opts.desired(current, {}, {}).allowed_to_join == Membership(scope)


def test_none_to_selected_without_lists_warns_that_nobody_can_join():
    current = policy(Membership('none'))
    opts = options(allowed_to_join='selected')
    opts.check(current)
    desired = opts.desired(current, {}, {})
    assert desired.allowed_to_join == Membership('selected')
    [warning] = opts.warnings(current, desired)
    assert 'nobody can join' in warning


def test_selected_without_lists_keeps_the_current_lists():
    current = policy(SELECTED)
    desired = options(allowed_to_join='selected').desired(current, {}, {})
    assert desired == current


def test_lists_without_scope_replace_only_the_given_list_when_already_selected():
    current = policy(SELECTED)
    opts = options(users=[U2, U3])
    opts.check(current)
    desired = opts.desired(current, ALL_IDS, ALL_IDS)
    assert desired.allowed_to_join == Membership('selected', frozenset({U2, U3}), frozenset({G1}))


def test_an_empty_list_empties_it_and_the_warning_says_nobody_can_join():
    current = policy(Membership('selected', frozenset({U1})))
    opts = options(users=[])
    opts.check(current)
    desired = opts.desired(current, {}, {})
    assert desired.allowed_to_join == Membership('selected')
    assert any('nobody can join' in warning for warning in opts.warnings(current, desired))


def test_order_duplicates_and_case_do_not_change_anything():
    current = policy(Membership('selected', frozenset({U1, U2}), frozenset({G1})))
    entries = ['Alice@Contoso.com', U2, 'alice@contoso.com', U2.upper()]
    opts = options(allowed_to_join='selected', users=entries, groups=['Sales', G1])
    assert opts.entries() == (['Alice@Contoso.com', U2, 'alice@contoso.com', U2.upper()], ['Sales', G1])
    user_ids = {'Alice@Contoso.com': U1, 'alice@contoso.com': U1, U2: U2, U2.upper(): U2}
    desired = opts.desired(current, user_ids, {'Sales': G1, G1: G1})
    assert desired == current


def test_entries_are_resolved_once_across_join_scope_and_local_admins():
    opts = options(allowed_to_join='selected', users=['a@x', U1], groups=['G'],
                   local_admins={'registering_users': 'selected', 'users': [U1, 'b@x'], 'groups': ['G', 'H']})
    assert opts.entries() == (['a@x', U1, 'b@x'], ['G', 'H'])


# --- invalid combinations -----------------------------------------------------------------------------------------

@pytest.mark.parametrize('scope', ['all', 'none'])
def test_lists_with_all_or_none_are_rejected(scope):
    [problem] = problems_of(options(allowed_to_join=scope, users=[U1], groups=[G1]), policy(SELECTED))
    assert problem == ('users and groups only apply to allowed_to_join: selected, not %s. '
                       'Remove users and groups, or set allowed_to_join: selected.' % scope)


def test_empty_lists_with_all_are_accepted():
    # info's config carries users: [] and groups: [] for All; feeding it back must work
    current = policy(Membership('all'))
    opts = options(allowed_to_join='all', users=[], groups=[])
    opts.check(current)
    assert opts.desired(current, {}, {}) == current


@pytest.mark.parametrize('scope', ['all', 'none'])
def test_lists_without_scope_need_a_selected_tenant(scope):
    [problem] = problems_of(options(groups=['Sales']), policy(Membership(scope)))
    assert 'groups replace the Selected list' in problem
    assert 'allowed_to_join is currently %s' % scope in problem
    assert 'Set allowed_to_join: selected' in problem


@pytest.mark.parametrize('quota, reason', [
    (101, 'the portal stores values above 100 as 100'),
    (2147483647, 'the portal stores values above 100 as 100'),
    (-1, 'it is a number of devices'),
])
def test_quota_outside_0_to_100_is_rejected_with_the_reason(quota, reason):
    [problem] = problems_of(options(user_device_quota=quota), policy(SELECTED))
    assert 'user_device_quota must be between 0 and 100, got %d' % quota in problem
    assert reason in problem


def test_a_stored_quota_outside_the_range_is_carried_through():
    current = policy(SELECTED, user_device_quota=2147483647)
    opts = options(user_device_quota=2147483647)
    opts.check(current)
    assert opts.desired(current, {}, {}) == current
    assert options(require_mfa=True).desired(current, {}, {}).user_device_quota == 2147483647


def test_quota_zero_is_accepted_with_a_warning():
    current = policy(SELECTED)
    opts = options(user_device_quota=0)
    opts.check(current)
    desired = opts.desired(current, {}, {})
    assert desired.user_device_quota == 0
    assert opts.warnings(current, desired) == ['user_device_quota: 0 means no user can join or register any more devices.']
    assert opts.warnings(desired, desired) == []


def test_every_problem_is_reported_at_once():
    current = policy(Membership('all'), local_admins_registering=Membership('none'))
    opts = options(allowed_to_join='none', users=[U1], user_device_quota=500,
                   local_admins={'users': ['tech@contoso.com']})
    problems = problems_of(opts, current)
    assert len(problems) == 3
    assert problems[0].startswith('users only apply to allowed_to_join: selected, not none.')
    assert problems[1].startswith('local_admins.users replace the Selected list, but local_admins.registering_users is currently none')
    assert problems[2].startswith('user_device_quota must be between 0 and 100, got 500')


# --- local administrators -----------------------------------------------------------------------------------------

@pytest.mark.parametrize('scope', ['all', 'none'])
def test_local_admin_lists_follow_the_same_rules(scope):
    [problem] = problems_of(options(local_admins={'registering_users': scope, 'groups': [G1]}), policy(SELECTED))
    assert problem == ('local_admins.groups only apply to local_admins.registering_users: selected, not %s. '
                       'Remove local_admins.groups, or set local_admins.registering_users: selected.' % scope)


def test_local_admin_lists_without_scope_need_a_selected_tenant():
    [problem] = problems_of(options(local_admins={'users': [U1]}), policy(SELECTED, local_admins_registering=Membership('all')))
    assert 'local_admins.registering_users is currently all' in problem
    assert 'Set local_admins.registering_users: selected' in problem


def test_local_admin_lists_without_local_admins_in_the_tenant():
    [problem] = problems_of(options(local_admins={'users': [U1]}),
                            policy(SELECTED, local_admins_global=None, local_admins_registering=None))
    assert 'local_admins.registering_users is currently not set' in problem


def test_local_admins_selected_with_users_and_groups():
    current = policy(SELECTED)
    opts = options(local_admins={'registering_users': 'selected', 'users': [U2], 'groups': [G2]})
    opts.check(current)
    desired = opts.desired(current, ALL_IDS, ALL_IDS)
    assert desired.local_admins_registering == Membership('selected', frozenset({U2}), frozenset({G2}))
    assert desired.allowed_to_join == current.allowed_to_join
    assert desired.local_admins_global is True
    assert opts.fields() == ['local_admins_registering']


def test_global_admins_alone_keeps_the_registering_users():
    current = policy(SELECTED, local_admins_registering=Membership('selected', frozenset({U3})))
    opts = options(local_admins={'global_admins': False})
    desired = opts.desired(current, {}, {})
    assert desired == policy(SELECTED, local_admins_registering=Membership('selected', frozenset({U3})), local_admins_global=False)
    assert opts.fields() == ['local_admins_global']


def test_local_admins_absent_from_the_tenant_stay_absent_unless_asked():
    current = policy(SELECTED, local_admins_global=None, local_admins_registering=None)
    assert options(user_device_quota=10).desired(current, {}, {}).local_admins_registering is None
    desired = options(local_admins={'registering_users': 'none'}).desired(current, {}, {})
    assert desired.local_admins_registering == Membership('none')


# --- other fields and warnings ------------------------------------------------------------------------------------

def test_mfa_warning_only_when_it_turns_mfa_on():
    current = policy(SELECTED)
    opts = options(require_mfa=True)
    desired = opts.desired(current, {}, {})
    assert desired.require_mfa is True
    assert opts.warnings(current, desired) == [MFA_WARNING]
    assert "Conditional Access user action 'Register or join devices'" in MFA_WARNING
    assert opts.warnings(desired, desired) == []
    mfa_on, mfa_off = desired, current
    assert options(require_mfa=False).warnings(mfa_on, mfa_off) == []


def test_scalar_fields():
    current = policy(SELECTED)
    opts = options(user_device_quota=20, require_mfa=True, laps_enabled=True)
    desired = opts.desired(current, {}, {})
    assert (desired.user_device_quota, desired.require_mfa, desired.laps_enabled) == (20, True, True)
    assert opts.fields() == ['user_device_quota', 'require_mfa', 'laps_enabled']


def test_groups_added_covers_both_lists_and_ignores_kept_groups():
    current = policy(SELECTED, local_admins_registering=Membership('selected', groups=frozenset({G2})))
    desired = policy(Membership('selected', groups=frozenset({G1, G2})),
                     local_admins_registering=Membership('selected', groups=frozenset({G1, G2})))
    assert groups_added(current, desired) == {G2, G1}
    assert groups_added(policy(Membership('all')), policy(Membership('selected', groups=frozenset({G1})))) == {G1}
    assert groups_added(desired, desired) == set()


def test_policy_ids_holds_both_lists():
    current = policy(SELECTED, local_admins_registering=Membership('selected', frozenset({U3}), frozenset({G2})))
    assert policy_ids(current) == {U1, G1, U3, G2}
    assert policy_ids(policy(Membership('all'), local_admins_registering=None)) == set()


def test_entry_ids_use_the_principal_or_keep_a_known_deleted_id():
    class Found:
        id = U1.upper()

    assert entry_ids(['alice@contoso.com', U3.upper()], {'alice@contoso.com': Found()}) == {'alice@contoso.com': U1, U3.upper(): U3}


def test_a_join_block_that_is_not_admin_configurable_refuses_join_changes_only():
    raw = {'azureADJoin': {'isAdminConfigurable': False}}
    current = policy(SELECTED)
    check_join_configurable(raw, current, options(user_device_quota=3, laps_enabled=True).desired(current, {}, {}))
    check_join_configurable(raw, current, current)
    with pytest.raises(OptionsError) as caught:
        check_join_configurable(raw, current, options(allowed_to_join='all', local_admins={'global_admins': False}).desired(current, {}, {}))
    assert 'azureADJoin.isAdminConfigurable is false' in str(caught.value)
    assert 'allowed_to_join and local_admins.global_admins cannot be changed. Leave them out of the task.' in str(caught.value)
    check_join_configurable({'azureADJoin': {'isAdminConfigurable': True}}, current, policy(Membership('all')))
    check_join_configurable({'azureADJoin': {}}, current, policy(Membership('all')))


# --- round trips and preservation over many random tenants --------------------------------------------------------

def random_membership(rng: random.Random, allow_absent: bool = False) -> dict | None:
    kind = rng.choice(['all', 'selected', 'none'] + (['absent'] if allow_absent else []))
    if kind == 'absent':
        return None
    if kind == 'all':
        return {'@odata.type': '#microsoft.graph.allDeviceRegistrationMembership'}
    if kind == 'none':
        return {'@odata.type': '#microsoft.graph.noDeviceRegistrationMembership'}
    return {'@odata.type': '#microsoft.graph.enumeratedDeviceRegistrationMembership',
            'users': [str(uuid.UUID(int=rng.getrandbits(128))) for dummy in range(rng.randint(0, 3))],
            'groups': [str(uuid.UUID(int=rng.getrandbits(128))).upper() for dummy in range(rng.randint(0, 3))]}


def random_raw_policy(rng: random.Random) -> dict:
    join: dict = {'isAdminConfigurable': rng.choice([True, False]), 'allowedToJoin': random_membership(rng)}
    local_admins = random_membership(rng, allow_absent=True)
    if local_admins is not None:
        join['localAdmins'] = {'enableGlobalAdmins': rng.choice([True, False]), 'registeringUsers': local_admins}
    return {
        '@odata.context': 'https://graph.microsoft.com/v1.0/$metadata#deviceRegistrationPolicy',
        'id': 'deviceRegistrationPolicy',
        'displayName': 'Device Registration Policy',
        'description': 'Tenant-wide policy that manages initial provisioning controls',
        'userDeviceQuota': rng.choice([0, 1, 20, 50, 100, 2147483647]),
        'multiFactorAuthConfiguration': rng.choice(['notRequired', 'required']),
        'azureADRegistration': {'isAdminConfigurable': rng.choice([True, False]), 'allowedToRegister': random_membership(rng)},
        'azureADJoin': join,
        'localAdminPassword': {'isEnabled': rng.choice([True, False])},
    }


def random_options(rng: random.Random) -> dict:
    """One or two fields to change; always valid, whatever the tenant holds."""
    params: dict = {}
    for field in rng.sample(['join', 'quota', 'mfa', 'laps', 'global_admins', 'registering'], rng.randint(1, 2)):
        if field == 'join':
            scope = rng.choice(SCOPES)
            params['allowed_to_join'] = scope
            if scope == 'selected':
                params['users'] = [str(uuid.uuid4()) for dummy in range(rng.randint(0, 2))]
                params['groups'] = [str(uuid.uuid4())]
        elif field == 'quota':
            params['user_device_quota'] = rng.randint(0, 100)
        elif field == 'mfa':
            params['require_mfa'] = rng.choice([True, False])
        elif field == 'laps':
            params['laps_enabled'] = rng.choice([True, False])
        elif field == 'global_admins':
            params.setdefault('local_admins', {})['global_admins'] = rng.choice([True, False])
        else:
            params.setdefault('local_admins', {})['registering_users'] = rng.choice(SCOPES)
    return params


# The raw part of the body each option may change; everything else must be sent exactly as read.
OWNED_BY = {
    'user_device_quota': [('userDeviceQuota',)],
    'require_mfa': [('multiFactorAuthConfiguration',)],
    'laps_enabled': [('localAdminPassword',)],
    'allowed_to_join': [('azureADJoin', 'allowedToJoin')],
    'local_admins_global': [('azureADJoin', 'localAdmins', 'enableGlobalAdmins')],
    'local_admins_registering': [('azureADJoin', 'localAdmins', 'registeringUsers')],
}


def without(body: dict, paths: list[tuple[str, ...]]) -> dict:
    body = copy.deepcopy(body)
    for path in paths:
        node = body
        for key in path[:-1]:
            node = node.get(key) or {}
        node.pop(path[-1], None)
    # an absent localAdmins and one emptied by the removals above say the same thing
    join = body.get('azureADJoin', {})
    if join.get('localAdmins') == {}:
        del join['localAdmins']
    return body


@pytest.mark.parametrize('seed', range(8))
def test_random_changes_preserve_every_other_field(seed):
    rng = random.Random(seed)
    for dummy in range(60):
        raw = random_raw_policy(rng)
        current = parse_policy(raw)
        params = random_options(rng)
        opts = PolicyOptions.from_params(params)
        opts.check(current)
        users, groups = opts.entries()
        desired = opts.desired(current, identity(*users), identity(*groups))
        body = render_put_body(raw, desired)

        assert not {'id', 'displayName', 'description', '@odata.context'} & set(body)
        assert parse_policy(body) == desired
        assert body['azureADRegistration'] == raw['azureADRegistration']
        assert body['azureADJoin']['isAdminConfigurable'] == raw['azureADJoin']['isAdminConfigurable']
        touched = [path for field in opts.fields() for path in OWNED_BY[field]]
        read_only = ['id', 'displayName', 'description', '@odata.context']
        assert without(body, touched) == without(raw, touched + [(key,) for key in read_only]), params


@pytest.mark.parametrize('seed', range(4))
def test_feeding_config_back_is_a_no_op(seed):
    rng = random.Random(1000 + seed)
    for dummy in range(50):
        raw = random_raw_policy(rng)
        current = parse_policy(raw)
        config = to_config(current)
        opts = PolicyOptions.from_params(config)
        opts.check(current)
        users, groups = opts.entries()
        assert opts.desired(current, identity(*users), identity(*groups)) == current
        assert render_put_body(raw, current) == render_put_body(raw, opts.desired(current, identity(*users), identity(*groups)))
