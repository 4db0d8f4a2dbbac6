# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Principal resolution: URL building and count parsing, then real lookups against the emulator over HTTPS."""

from __future__ import annotations

import base64
import urllib.parse

import pytest

from ansible_collections.entra.autopilot.plugins.module_utils._graph_client import GraphClient, GraphError
from ansible_collections.entra.autopilot.plugins.module_utils._policy import Membership
from ansible_collections.entra.autopilot.plugins.module_utils._principals import (
    NOBODY_CAN_JOIN_WARNING,
    SEED_GROUP_NOTE,
    Principal,
    PrincipalResolver,
    ResolutionError,
    Resolved,
    group_filter_path,
    group_warnings,
    is_object_id,
    nobody_can_join_warning,
    parse_count,
    user_path,
)
from ansible_collections.entra.autopilot.tests.unit.plugins.module_utils.emulator_graph import graph_client

GROUP = Principal('44444444-4444-4444-8444-444444444444', 'group', 'Autopilot devices')


class TestObjectIds:
    @pytest.mark.parametrize('value', ['3c8ef067-8b96-44de-b2ae-557dfa0f97a0', '3C8EF067-8B96-44DE-B2AE-557DFA0F97A0',
                                       ' 3c8ef067-8b96-44de-b2ae-557dfa0f97a0 '])
    def test_object_ids(self, value):
        assert is_object_id(value)

    @pytest.mark.parametrize('value', ['adele@contoso.com', '3c8ef0678b9644deb2ae557dfa0f97a0', '{3c8ef067-8b96-44de-b2ae-557dfa0f97a0}',
                                       '3c8ef067-8b96-44de-b2ae-557dfa0f97ag', 'Autopilot users', ''])
    def test_not_object_ids(self, value):
        assert not is_object_id(value)


class TestPaths:
    def test_guest_upn_hash_is_percent_encoded(self):
        assert user_path('adele_fabrikam.com#EXT#@contoso.onmicrosoft.com') == 'users/adele_fabrikam.com%23EXT%23@contoso.onmicrosoft.com'

    def test_reserved_characters_are_encoded_and_decode_back(self):
        upn = "o'neil+test/x?y&z=1 %@contoso.com"
        path = user_path(upn)
        segment = path[len('users/'):]
        assert '/' not in segment and '?' not in segment and '&' not in segment and '#' not in segment and ' ' not in segment
        assert urllib.parse.unquote(segment) == upn

    def test_dollar_upn_uses_the_key_syntax_with_doubled_quotes(self):
        assert user_path('$adele@contoso.com') == "users('$adele@contoso.com')"
        assert user_path("$o'neil#EXT#@contoso.com") == "users('$o''neil%23EXT%23@contoso.com')"

    def test_group_filter_doubles_apostrophes_and_encodes(self):
        path = group_filter_path("O'Brien's devices & more #1 + 100%")
        assert path.startswith('groups?$filter=') and path.endswith('&$select=id,displayName,mail')
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
        assert query['$filter'] == ["displayName eq 'O''Brien''s devices & more #1 + 100%'"]
        assert query['$select'] == ['id,displayName,mail']


class TestCounts:
    @pytest.mark.parametrize('body, expected', [
        (893, 893), (0, 0), ('893', 893), (' 12\n', 12), ('0', 0),
        (base64.b64encode(b'893').decode(), 893), (base64.b64encode(b'0').decode(), 0),
        (base64.b64encode(b'7\r\n').decode(), 7),
    ])
    def test_count_body_shapes(self, body, expected):
        assert parse_count(body) == expected

    @pytest.mark.parametrize('body', [None, True, {'value': 3}, 'many', base64.b64encode(b'many').decode(), '-1', 1.5])
    def test_unreadable_counts(self, body):
        assert parse_count(body) is None


class TestWarnings:
    def test_group_without_users_quotes_the_seed_note(self):
        warnings = group_warnings([GROUP], {GROUP.id: 0})
        assert len(warnings) == 1
        assert 'Autopilot devices (%s) contains no user objects' % GROUP.id in warnings[0]
        assert warnings[0].endswith(SEED_GROUP_NOTE)
        assert SEED_GROUP_NOTE == 'Any selected groups must be a Microsoft Entra group that contains user objects.'

    def test_group_with_users_is_fine_and_an_uncounted_group_is_said(self):
        assert group_warnings([GROUP], {GROUP.id: 3}) == []
        assert 'Could not count the user members of the group Autopilot devices' in group_warnings([GROUP], {})[0]

    def test_nobody_can_join(self):
        assert nobody_can_join_warning(Membership('selected')) == NOBODY_CAN_JOIN_WARNING
        assert 'nobody can join' in NOBODY_CAN_JOIN_WARNING
        assert nobody_can_join_warning(Membership('selected', {GROUP.id})) is None
        assert nobody_can_join_warning(Membership('none')) is None
        assert nobody_can_join_warning(None) is None


# --- against the emulator's demo tenant, with a real GraphClient (msal login, HTTPS) ------------------------------

ADELE = '4dd3bc65-5f06-4ca8-bf94-a0859120d58f'
ALEX = '158bda81-2b50-4c46-92a9-ed995f53b63b'
SEAN = '7137aef4-9941-4bbf-bbed-ea73157f52d5'
KIOSK = 'd42b785b-9221-4c96-bc65-de9dd9b6b483'
JANE_GUEST = '270af36b-e7a1-4df2-beb1-458efe93723e'
DIEGO_DELETED = '845f4493-b41a-4e1b-8640-d31c1282cb20'
TECHNICIANS = '6cd0d409-6780-4876-ae1c-fea043980712'
DEVICES_ONLY = '51d6b0b6-77aa-46b0-8eac-4b9b28c2be21'
SALES_1, SALES_2 = 'b90d807a-5b82-4a55-b9ee-0bd0c35496d7', '2557f051-d282-4080-a7bd-06ef462b1ac3'
OREILLY = '6b529564-0901-45fa-ba3f-3a02922191a1'
IT_DEPARTMENT = 'b2fe566c-04e8-4286-a869-2f3e88ba3715'
PILOT_RING_EMPTY = 'f02dc7c3-cf61-4eb6-a958-0540920d282e'
NEVER_EXISTED = '00000000-0000-4000-8000-000000000bad'


@pytest.fixture
def graph(emulator, tenant) -> GraphClient:
    return graph_client(emulator, tenant)


@pytest.fixture
def graph_calls(emulator, tenant, graph):
    """A function returning the Graph requests (method, path) made for the tenant since the client was built."""
    mark = emulator.control.last_seq()

    def calls(kind: str = 'graph') -> list[tuple[str, str]]:
        return [(entry['method'], entry['path']) for entry in emulator.control.log(tenant=tenant['tenant_id'], since=mark)
                if entry['kind'] == kind]
    return calls


ONE_LOOKUP_OF_EACH = [('POST', '/v1.0/directoryObjects/getByIds'), ('POST', '/v1.0/$batch')]


class TestResolveAgainstTheEmulator:
    def test_names_and_ids_resolve_in_one_get_by_ids_and_one_batch(self, graph, graph_calls):
        users = ['jane.doe_fabrikam.com#EXT#@contoso.onmicrosoft.com', "sean.o'brien@contoso.com", '$kiosk-setup@contoso.com',
                 'ADELEV@contoso.com', 'AdeleV@contoso.com', ALEX.upper(), DIEGO_DELETED]
        groups = ["O'Reilly Project Team", 'Autopilot Technicians', IT_DEPARTMENT]
        resolved = PrincipalResolver(graph).resolve(users, groups, known_ids=[DIEGO_DELETED, TECHNICIANS],
                                                    listed={'user': [DIEGO_DELETED], 'group': [TECHNICIANS]})
        assert resolved.user_ids == {
            'jane.doe_fabrikam.com#EXT#@contoso.onmicrosoft.com': JANE_GUEST, "sean.o'brien@contoso.com": SEAN,
            '$kiosk-setup@contoso.com': KIOSK, 'ADELEV@contoso.com': ADELE, 'AdeleV@contoso.com': ADELE,
            ALEX.upper(): ALEX, DIEGO_DELETED: DIEGO_DELETED}
        assert resolved.group_ids == {"O'Reilly Project Team": OREILLY, 'Autopilot Technicians': TECHNICIANS,
                                      IT_DEPARTMENT: IT_DEPARTMENT}
        assert resolved.users['AdeleV@contoso.com'] == Principal(ADELE, 'user', 'AdeleV@contoso.com', 'AdeleV@contoso.com', 'Adele Vance')
        assert resolved.users[ALEX.upper()].name == 'AlexW@contoso.com'
        # the deleted, already listed id stays; it has no name, so readable views show it as deleted
        assert DIEGO_DELETED not in resolved.principals
        assert {TECHNICIANS, ALEX, IT_DEPARTMENT, ADELE, JANE_GUEST, SEAN, KIOSK, OREILLY} <= set(resolved.principals)
        assert resolved.missing == []
        assert graph_calls() == ONE_LOOKUP_OF_EACH
        # one lookup per distinct name (the two spellings of Adele's UPN share one), with the UPN encoded as documented
        items = [path for _method, path in graph_calls('batch-item')]
        assert len(items) == 6
        assert '/v1.0/users/jane.doe_fabrikam.com%23EXT%23@contoso.onmicrosoft.com' in items
        assert "/v1.0/users('$kiosk-setup@contoso.com')" in items

    def test_duplicate_group_names_are_an_error_listing_each_candidate(self, graph):
        with pytest.raises(ResolutionError) as caught:
            PrincipalResolver(graph).resolve([], ['Sales'])
        message = str(caught.value)
        assert SALES_1 in message and SALES_2 in message and 'mail sales@contoso.com' in message
        assert '2 groups have this display name' in message
        assert caught.value.entries == ['Sales']

    def test_every_problem_is_listed_at_once(self, graph, graph_calls):
        users = ['AdeleV@contoso.com', 'nobody@contoso.com', NEVER_EXISTED, TECHNICIANS, DIEGO_DELETED]
        groups = ['Autopilot Technicians', 'Sales', 'No Such Group', ALEX]
        with pytest.raises(ResolutionError) as caught:
            PrincipalResolver(graph).resolve(users, groups)
        error = caught.value
        assert error.entries == ['nobody@contoso.com', NEVER_EXISTED, TECHNICIANS, DIEGO_DELETED, 'Sales', 'No Such Group', ALEX]
        assert len(error.problems) == 7
        assert error.problems[0].startswith('users: nobody@contoso.com: no user has this userPrincipalName')
        assert error.problems[2] == 'users: %s: this is the group Autopilot Technicians, not a user; list it under groups.' % TECHNICIANS
        assert error.problems[3].startswith('users: %s: no user or group has this object id' % DIEGO_DELETED)
        assert error.problems[5] == 'groups: No Such Group: no group has this display name (it must match exactly; or give the object id).'
        assert error.problems[6] == 'groups: %s: this is the user AlexW@contoso.com, not a group; list it under users.' % ALEX
        assert str(error).startswith('Could not resolve 7 entries, so nothing was changed: users: nobody@contoso.com')
        assert error.details == {'problems': error.problems, 'entries': error.entries}
        assert graph_calls() == ONE_LOOKUP_OF_EACH

    def test_a_deleted_id_is_accepted_only_under_the_kind_that_lists_it(self, graph):
        listed = {'user': [DIEGO_DELETED], 'group': [TECHNICIANS]}
        assert PrincipalResolver(graph).resolve([DIEGO_DELETED], [], listed=listed).user_ids == {DIEGO_DELETED: DIEGO_DELETED}
        # named for its name only (known_ids), a deleted id is not accepted
        with pytest.raises(ResolutionError, match='no user or group has this object id'):
            PrincipalResolver(graph).resolve([DIEGO_DELETED], [], known_ids=[DIEGO_DELETED])
        # under the other kind it would reach the PUT as a group id, which Graph refuses
        with pytest.raises(ResolutionError) as caught:
            PrincipalResolver(graph).resolve([], [DIEGO_DELETED.upper()], listed=listed)
        assert caught.value.problems == [
            'groups: %s: no group has this object id: it is the id of a deleted object listed under users, where it can '
            'stay or be removed, but not be given as a group.' % DIEGO_DELETED.upper()]
        # for a removal it is simply not there
        resolved = PrincipalResolver(graph).resolve([], [DIEGO_DELETED], listed=listed, allow_missing=True)
        assert resolved.missing == [('group', DIEGO_DELETED)] and resolved.groups == {}

    def test_missing_entries_can_be_allowed_for_removals(self, graph):
        resolved = PrincipalResolver(graph).resolve(['nobody@contoso.com', NEVER_EXISTED, 'AdeleV@contoso.com'], ['No Such Group'],
                                                    allow_missing=True)
        assert resolved.missing == [('user', NEVER_EXISTED), ('user', 'nobody@contoso.com'), ('group', 'No Such Group')]
        assert resolved.user_ids == {'AdeleV@contoso.com': ADELE}
        with pytest.raises(ResolutionError, match='2 groups have this display name'):
            PrincipalResolver(graph).resolve([], ['Sales'], allow_missing=True)

    def test_nothing_to_resolve_makes_no_call(self, graph, graph_calls):
        assert PrincipalResolver(graph).resolve([], []) == Resolved()
        assert graph_calls() == []

    def test_a_permission_error_is_raised_not_listed(self, emulator, tenant, graph):
        emulator.control.fault(tenant=tenant['tenant_id'], kind='batch-item', path='^/users/', status=403, count=-1)
        try:
            with pytest.raises(GraphError, match='HTTP 403'):
                PrincipalResolver(graph).resolve(['AdeleV@contoso.com'], [])
        finally:
            emulator.control.clear_faults()

    def test_a_lookup_graph_rejects_is_that_entry_s_problem(self, emulator, tenant, graph):
        # the eq filter of Graph is limited to 120 characters: a longer name gets a 400 for its own item
        emulator.control.fault(tenant=tenant['tenant_id'], kind='batch-item', path='^/groups$', status=400, count=1)
        try:
            with pytest.raises(ResolutionError, match=r'groups: x{130}: Graph rejected the lookup'):
                PrincipalResolver(graph).resolve([], ['x' * 130])
        finally:
            emulator.control.clear_faults()


class TestLookupIdsAgainstTheEmulator:
    def test_found_objects_by_lower_case_id_and_deleted_ones_absent(self, graph, graph_calls):
        found = PrincipalResolver(graph).lookup_ids([ADELE.upper(), TECHNICIANS, DIEGO_DELETED, NEVER_EXISTED, 'not-an-id'])
        assert set(found) == {ADELE, TECHNICIANS}
        assert found[TECHNICIANS] == Principal(TECHNICIANS, 'group', 'Autopilot Technicians', None, 'Autopilot Technicians')
        assert found[ADELE].display_name == 'Adele Vance'
        assert graph_calls() == [('POST', '/v1.0/directoryObjects/getByIds')]

    def test_more_than_1000_ids_take_one_call_per_1000(self, graph, graph_calls):
        ids = ['%08x-0000-4000-8000-000000000000' % number for number in range(1500)] + [ALEX]
        assert set(PrincipalResolver(graph).lookup_ids(ids)) == {ALEX}
        assert graph_calls() == [('POST', '/v1.0/directoryObjects/getByIds')] * 2


class TestGroupUserCountsAgainstTheEmulator:
    def test_counts_in_one_batch(self, graph, graph_calls):
        counts = PrincipalResolver(graph).group_user_counts([TECHNICIANS.upper(), DEVICES_ONLY, IT_DEPARTMENT, PILOT_RING_EMPTY,
                                                             NEVER_EXISTED])
        # the device-only group counts 0 users; a nested group is not a user; a group that does not exist has no count
        assert counts == {TECHNICIANS: 4, DEVICES_ONLY: 0, IT_DEPARTMENT: 3, PILOT_RING_EMPTY: 0}
        assert graph_calls() == [('POST', '/v1.0/$batch')]
        items = graph_calls('batch-item')
        assert len(items) == 5 and all(path.endswith('/members/microsoft.graph.user/$count') for _method, path in items)

    def test_warnings_for_the_device_only_group(self, graph):
        devices = PrincipalResolver(graph).resolve([], ['Autopilot Devices']).groups['Autopilot Devices']
        warnings = group_warnings([devices], PrincipalResolver(graph).group_user_counts([devices.id]))
        assert warnings == ['The group Autopilot Devices (%s) contains no user objects, so it lets nobody join devices. %s'
                            % (DEVICES_ONLY, SEED_GROUP_NOTE)]
