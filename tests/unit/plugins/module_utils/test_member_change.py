# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The add/remove rule of entra_device_join_member (pure), and its read-modify-write against the emulator."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.entra.autopilot.plugins.module_utils._errors import EntraError
from ansible_collections.entra.autopilot.plugins.module_utils._graph_client import GraphClient
from ansible_collections.entra.autopilot.plugins.module_utils._lock import tenant_lock
from ansible_collections.entra.autopilot.plugins.module_utils._member_change import (
    MemberChange,
    apply_member_change,
    decide,
    resolve_change,
)
from ansible_collections.entra.autopilot.plugins.module_utils._policy import (
    SCOPE_ODATA_TYPES,
    UPDATABLE_PROPERTIES,
    Membership,
    parse_policy,
    render_put_body,
)
from ansible_collections.entra.autopilot.plugins.module_utils._policy_store import POLICY_PATH, PolicyStore
from ansible_collections.entra.autopilot.plugins.module_utils._principals import (
    NOBODY_CAN_JOIN_WARNING,
    PrincipalResolver,
    ResolutionError,
)
from ansible_collections.entra.autopilot.tests.unit.plugins.module_utils.emulator_graph import graph_client

U1, U2, U3 = ('11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222',
              '33333333-3333-4333-8333-333333333333')
G1, G2 = '44444444-4444-4444-8444-444444444444', '55555555-5555-4555-8555-555555555555'
DELETED = '99999999-9999-4999-8999-999999999999'  # an id of a deleted user, kept in the list


def selected(users=(), groups=()) -> Membership:
    return Membership(scope='selected', users=frozenset(users), groups=frozenset(groups))


def present(users=(), groups=(), entries=('x',)) -> MemberChange:
    return MemberChange(state='present', users=frozenset(users), groups=frozenset(groups), entries=tuple(entries))


def absent(users=(), groups=(), entries=('x',)) -> MemberChange:
    return MemberChange(state='absent', users=frozenset(users), groups=frozenset(groups), entries=tuple(entries))


class TestSelected:
    def test_present_adds_only_missing_entries_and_keeps_the_rest(self):
        current = selected(users=[U1, DELETED], groups=[G1])
        decision = decide(current, present(users=[U1, U2], groups=[G2]))
        assert decision.changed
        assert decision.added_users == {U2}
        assert decision.added_groups == {G2}
        assert not decision.removed_users and not decision.removed_groups
        assert decision.membership == selected(users=[U1, U2, DELETED], groups=[G1, G2])
        assert decision.warnings == ()

    def test_present_of_entries_already_there_is_no_change(self):
        current = selected(users=[U1, DELETED], groups=[G1])
        decision = decide(current, present(users=[U1, DELETED], groups=[G1]))
        assert not decision.changed
        assert decision.membership == current

    def test_absent_removes_only_named_entries_that_are_there(self):
        current = selected(users=[U1, U2, DELETED], groups=[G1, G2])
        decision = decide(current, absent(users=[U2, U3], groups=[G1]))
        assert decision.removed_users == {U2}
        assert decision.removed_groups == {G1}
        assert decision.membership == selected(users=[U1, DELETED], groups=[G2])
        assert decision.warnings == ()

    def test_absent_removes_a_deleted_objects_id(self):
        decision = decide(selected(users=[U1, DELETED]), absent(users=[DELETED]))
        assert decision.removed_users == {DELETED}
        assert decision.membership == selected(users=[U1])

    def test_absent_of_entries_not_there_is_no_change(self):
        current = selected(users=[U1], groups=[G1])
        decision = decide(current, absent(users=[U2], groups=[G2]))
        assert not decision.changed
        assert decision.membership == current

    def test_a_user_id_never_touches_the_group_list(self):
        # the same id named as a user does not remove it from groups (types are separate lists)
        current = selected(users=[U1], groups=[G1])
        assert not decide(current, absent(users=[G1])).changed

    def test_removing_the_last_member_keeps_selected_and_warns(self):
        decision = decide(selected(users=[U1], groups=[G1]), absent(users=[U1], groups=[G1]))
        assert decision.changed
        assert decision.membership == selected()
        assert decision.membership.scope == 'selected'
        assert decision.warnings == (NOBODY_CAN_JOIN_WARNING,)
        assert 'nobody can join' in NOBODY_CAN_JOIN_WARNING

    def test_an_already_empty_list_does_not_warn_again(self):
        decision = decide(selected(), absent(users=[U1]))
        assert not decision.changed
        assert decision.warnings == ()

    def test_adding_to_an_empty_list(self):
        decision = decide(selected(), present(groups=[G1]))
        assert decision.membership == selected(groups=[G1])


class TestAll:
    @pytest.mark.parametrize('change', [present(users=[U1], entries=['jane@contoso.com']),
                                        absent(users=[U1], entries=['jane@contoso.com'])])
    def test_no_change_and_a_warning_naming_the_entry(self, change):
        current = Membership(scope='all')
        decision = decide(current, change)
        assert not decision.changed
        assert decision.membership == current
        assert len(decision.warnings) == 1
        assert 'jane@contoso.com' in decision.warnings[0]
        assert 'scope is All' in decision.warnings[0]

    def test_present_says_every_user_may_already_join_and_nothing_is_stored(self):
        (warning,) = decide(Membership(scope='all'), present(users=[U1])).warnings
        assert 'every user may already join' in warning
        assert 'no member list is stored' in warning

    def test_absent_says_the_entry_can_still_join(self):
        (warning,) = decide(Membership(scope='all'), absent(users=[U1], entries=['jane@contoso.com'])).warnings
        assert 'jane@contoso.com can still join' in warning


class TestNone:
    def test_present_fails_and_says_to_set_selected_first(self):
        with pytest.raises(EntraError) as raised:
            decide(Membership(scope='none'), present(users=[U1], entries=['jane@contoso.com', 'Helpdesk']))
        message = str(raised.value)
        assert 'jane@contoso.com, Helpdesk' in message
        assert 'allowed_to_join: selected' in message
        assert 'entra.autopilot.entra_device_join_policy' in message

    def test_absent_is_no_change_without_warning(self):
        current = Membership(scope='none')
        decision = decide(current, absent(users=[U1]))
        assert not decision.changed
        assert decision.membership == current
        assert decision.warnings == ()


# --- against the emulator (real msal login, HTTPS) -----------------------------------------------------------------

POLICY_URL_PATH = '/v1.0/' + POLICY_PATH
MEGAN = 'cd4e460e-f211-4a48-827a-82c054036213'
ALEX = '158bda81-2b50-4c46-92a9-ed995f53b63b'
GUEST = '270af36b-e7a1-4df2-beb1-458efe93723e'
DIEGO_DELETED = '845f4493-b41a-4e1b-8640-d31c1282cb20'
TECHNICIANS = '6cd0d409-6780-4876-ae1c-fea043980712'
IT_DEPARTMENT = 'b2fe566c-04e8-4286-a869-2f3e88ba3715'


@pytest.fixture
def graph(emulator, tenant) -> GraphClient:
    return graph_client(emulator, tenant, max_retries=0)


@pytest.fixture
def graph_log(emulator, tenant, graph):
    """A function returning the Graph requests logged for the tenant since the client was built."""
    mark = emulator.control.last_seq()
    return lambda: [entry for entry in emulator.control.log(tenant=tenant['tenant_id'], since=mark) if entry['kind'] == 'graph']


def policy_puts(log) -> list[dict]:
    return [entry for entry in log if entry['method'] == 'PUT' and entry['path'] == POLICY_URL_PATH]


def stored_join(emulator, tenant) -> Membership:
    return parse_policy(emulator.control.state(tenant['tenant_id'])['policy']).allowed_to_join


def without_join_lists(policy: dict) -> dict:
    """The policy with azureADJoin.allowedToJoin's lists taken out: what a member change must leave as it was."""
    rest = copy.deepcopy(policy)
    rest['azureADJoin']['allowedToJoin'].pop('users', None)
    rest['azureADJoin']['allowedToJoin'].pop('groups', None)
    return rest


class TestResolveChange:
    def test_present_resolves_upns_guests_group_names_and_ids(self, graph):
        _raw, current = PolicyStore(graph).read()
        change, names, warnings = resolve_change(
            PrincipalResolver(graph), current, 'present',
            ['alexw@CONTOSO.com', 'jane.doe_fabrikam.com#EXT#@contoso.onmicrosoft.com', MEGAN.upper()],
            ['IT Department', TECHNICIANS])
        assert change == MemberChange(state='present', users=frozenset({ALEX, GUEST, MEGAN}),
                                      groups=frozenset({IT_DEPARTMENT, TECHNICIANS}), entries=change.entries)
        assert change.entries[0] == 'alexw@CONTOSO.com' and len(change.entries) == 5
        assert names[ALEX].name == 'AlexW@contoso.com'
        assert names[IT_DEPARTMENT].name == 'IT Department'
        # the current list's names come with the same lookup (for the diff); the deleted id has none
        assert names[MEGAN].name == 'MeganB@contoso.com' and DIEGO_DELETED not in names
        assert warnings == []

    def test_present_fails_on_every_bad_entry_at_once_before_anything_is_written(self, graph, graph_log):
        _raw, current = PolicyStore(graph).read()
        with pytest.raises(ResolutionError) as raised:
            resolve_change(PrincipalResolver(graph), current, 'present', ['AlexW@contoso.com', 'nobody@contoso.com'],
                           ['Sales', 'No Such Group'])
        assert raised.value.entries == ['nobody@contoso.com', 'Sales', 'No Such Group']
        message = str(raised.value)
        assert 'b90d807a-5b82-4a55-b9ee-0bd0c35496d7' in message and '2557f051-d282-4080-a7bd-06ef462b1ac3' in message
        assert [entry['method'] for entry in graph_log() if entry['method'] not in ('GET', 'POST')] == []

    def test_present_accepts_a_deleted_id_that_is_already_listed(self, graph):
        _raw, current = PolicyStore(graph).read()
        change, _names, _warnings = resolve_change(PrincipalResolver(graph), current, 'present', [DIEGO_DELETED], [])
        assert change.users == {DIEGO_DELETED}
        assert not decide(current.allowed_to_join, change).changed

    @pytest.mark.parametrize('names', [True, False], ids=['diff', 'no-diff'])
    def test_present_refuses_a_deleted_id_listed_under_the_other_kind(self, graph, graph_log, names):
        # the deleted user's id is in the users list; as a group it would reach the PUT, which Graph refuses
        _raw, current = PolicyStore(graph).read()
        with pytest.raises(ResolutionError) as raised:
            resolve_change(PrincipalResolver(graph), current, 'present', ['AlexW@contoso.com'], [DIEGO_DELETED.upper()], names=names)
        assert raised.value.entries == [DIEGO_DELETED.upper()]
        assert 'no group has this object id: it is the id of a deleted object listed under users' in str(raised.value)
        assert 'nothing was changed' in str(raised.value)
        assert [entry['method'] for entry in graph_log() if entry['method'] not in ('GET', 'POST')] == []

    def test_present_still_accepts_a_deleted_id_in_its_own_list_without_diff(self, graph):
        _raw, current = PolicyStore(graph).read()
        change, _names, _warnings = resolve_change(PrincipalResolver(graph), current, 'present', [DIEGO_DELETED], [], names=False)
        assert change.users == {DIEGO_DELETED}

    def test_absent_by_the_upn_of_a_deleted_listed_user_says_to_use_the_id(self, graph):
        # DiegoS was deleted; his id is still listed, so "not in the list" would be wrong
        _raw, current = PolicyStore(graph).read()
        change, _names, warnings = resolve_change(PrincipalResolver(graph), current, 'absent', ['DiegoS@contoso.com'], [])
        assert change.users == frozenset()
        assert len(warnings) == 1
        assert 'DiegoS@contoso.com names no existing user, so nothing was removed by that name' in warnings[0]
        assert 'not in the list' not in warnings[0]
        assert 'removed by its object id' in warnings[0]

    def test_absent_takes_deleted_ids_and_warns_about_names_that_match_nothing(self, graph):
        _raw, current = PolicyStore(graph).read()
        change, names, warnings = resolve_change(PrincipalResolver(graph), current, 'absent',
                                                 [DIEGO_DELETED, 'gone@contoso.com'], ['Former Team'])
        assert change.users == {DIEGO_DELETED} and change.groups == frozenset()
        assert DIEGO_DELETED not in names
        assert len(warnings) == 2
        assert 'gone@contoso.com names no existing user' in warnings[0]
        assert 'Former Team names no existing group' in warnings[1]

    def test_absent_of_a_gone_id_the_list_does_not_hold_under_that_kind(self, graph, graph_log):
        # an id no object has and the list does not hold is absent, as asked (no warning: a second run of a removal);
        # the deleted user's id given as a group is not removed from the users list, and the warning says so
        _raw, current = PolicyStore(graph).read()
        unknown = '0badc0de-0000-4000-8000-000000000001'
        change, _names, warnings = resolve_change(PrincipalResolver(graph), current, 'absent', [unknown], [DIEGO_DELETED])
        assert change.users == frozenset() and change.groups == frozenset()
        assert not decide(current.allowed_to_join, change).changed
        assert warnings == [
            'Group %s is not in the list of groups, but the list of users holds it (the id of a deleted object); nothing was '
            'removed. To remove it, give it under users.' % DIEGO_DELETED]
        assert [entry['method'] for entry in graph_log() if entry['method'] not in ('GET', 'POST')] == []

    def test_absent_still_fails_on_an_ambiguous_group_name(self, graph):
        _raw, current = PolicyStore(graph).read()
        with pytest.raises(ResolutionError) as raised:
            resolve_change(PrincipalResolver(graph), current, 'absent', [], ['Sales'])
        assert raised.value.entries == ['Sales']

    @pytest.mark.parametrize('scope', ['all', 'none'])
    def test_no_lookup_while_the_scope_stores_no_list(self, emulator, tenant, graph, graph_log, scope):
        policy = emulator.control.state(tenant['tenant_id'])['policy']
        policy['azureADJoin']['allowedToJoin'] = {'@odata.type': SCOPE_ODATA_TYPES[scope]}
        emulator.control.set_policy(tenant['tenant_id'], policy)
        _raw, current = PolicyStore(graph).read()
        change, names, warnings = resolve_change(PrincipalResolver(graph), current, 'present', ['nobody@contoso.com'], [])
        assert change == MemberChange(state='present', entries=('nobody@contoso.com',))
        assert (names, warnings) == ({}, [])
        assert [entry['method'] for entry in graph_log()] == ['GET']


class TestApplyMemberChange:
    def test_adds_one_user_with_a_full_body_that_keeps_everything_else(self, emulator, tenant, graph, graph_log):
        before = emulator.control.state(tenant['tenant_id'])['policy']
        applied = apply_member_change(PolicyStore(graph), present(users=[ALEX]), lock=None)
        assert applied.writes == 1
        assert applied.decision.added_users == {ALEX}
        log = graph_log()
        assert [(entry['method'], entry['path']) for entry in log] == [('GET', POLICY_URL_PATH), ('PUT', POLICY_URL_PATH),
                                                                       ('GET', POLICY_URL_PATH)]
        body = policy_puts(log)[0]['body']
        assert set(body) == set(UPDATABLE_PROPERTIES)
        assert without_join_lists(body) == {key: value for key, value in without_join_lists(before).items() if key in body}
        # ids already there keep their order and case; the new one is appended
        assert body['azureADJoin']['allowedToJoin']['users'] == before['azureADJoin']['allowedToJoin']['users'] + [ALEX]
        assert body['azureADJoin']['allowedToJoin']['groups'] == before['azureADJoin']['allowedToJoin']['groups']
        after = emulator.control.state(tenant['tenant_id'])['policy']
        assert without_join_lists(after) == without_join_lists(before)
        assert stored_join(emulator, tenant) == selected(users=[MEGAN, DIEGO_DELETED, ALEX], groups=[TECHNICIANS])
        assert parse_policy(applied.raw).allowed_to_join == stored_join(emulator, tenant)

    def test_removes_a_deleted_id_and_keeps_the_rest(self, emulator, tenant, graph):
        applied = apply_member_change(PolicyStore(graph), absent(users=[DIEGO_DELETED]), lock=None)
        assert applied.decision.removed_users == {DIEGO_DELETED}
        assert stored_join(emulator, tenant) == selected(users=[MEGAN], groups=[TECHNICIANS])

    def test_nothing_to_do_under_the_lock_writes_nothing(self, emulator, tenant, graph, graph_log):
        applied = apply_member_change(PolicyStore(graph), present(users=[MEGAN], groups=[TECHNICIANS]),
                                      lock=lambda: tenant_lock(emulator.url, tenant['tenant_id']))
        assert (applied.writes, applied.decision.changed) == (0, False)
        assert policy_puts(graph_log()) == []

    def test_an_overwritten_change_is_written_again(self, emulator, tenant, graph, graph_log):
        store = OverwrittenStore(graph, graph_client(emulator, tenant, max_retries=0), times=2)
        sleeps: list[float] = []
        applied = apply_member_change(store, present(users=[ALEX]), lock=None, sleep=sleeps.append)
        assert applied.writes == 3
        assert len(sleeps) == 2 and all(0 < pause < 1 for pause in sleeps)
        # our three PUTs and the other writer's two
        assert len(policy_puts(graph_log())) == 5
        assert stored_join(emulator, tenant) == selected(users=[MEGAN, DIEGO_DELETED, ALEX], groups=[TECHNICIANS])
        assert applied.decision.added_users == {ALEX}

    def test_gives_up_after_the_last_attempt_and_says_why(self, emulator, tenant, graph):
        store = OverwrittenStore(graph, graph_client(emulator, tenant, max_retries=0), times=10)
        with pytest.raises(EntraError) as raised:
            apply_member_change(store, present(users=[ALEX], entries=['AlexW@contoso.com']), lock=None, attempts=3,
                                sleep=lambda _seconds: None)
        assert 'after each of 3 writes' in str(raised.value)
        assert 'AlexW@contoso.com is still not in place' in str(raised.value)
        assert store.overwrites == 3
        assert ALEX not in stored_join(emulator, tenant).users

    def test_without_verify_an_overwrite_goes_unnoticed(self, emulator, tenant, graph):
        # what verify=True is for: the same overwrite as above, and the change is silently lost
        store = OverwrittenStore(graph, graph_client(emulator, tenant, max_retries=0), times=1)
        applied = apply_member_change(store, present(users=[ALEX]), lock=None, verify=False)
        assert applied.writes == 1
        assert ALEX not in stored_join(emulator, tenant).users


class OverwrittenStore(PolicyStore):
    """A PolicyStore whose first ``times`` writes another writer undoes at once.

    The other writer (its own GraphClient and token) read the policy before our write and writes back what it read
    right after ours: the lost update that Graph's last-writer-wins PUT allows.
    """

    def __init__(self, client: GraphClient, other: GraphClient, times: int) -> None:
        super().__init__(client)
        self.other = PolicyStore(other)
        self.times = times
        self.overwrites = 0

    def write(self, raw, desired, fields):
        stale_raw, stale = self.other.read()
        after = super().write(raw, desired, fields)
        if self.overwrites < self.times:
            self.other.client.put(POLICY_PATH, render_put_body(stale_raw, stale))
            self.overwrites += 1
        return after
