# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Who may join devices under a membership (All, listed directly, through a listed group), against the emulator."""

from __future__ import annotations

import uuid

import pytest
from graph_emulator.testing import DEMO_IDS

from ansible_collections.entra.autopilot.plugins.module_utils._auth import build_session, settings_from_params
from ansible_collections.entra.autopilot.plugins.module_utils._coverage import (
    CHECK_GROUPS_LIMIT,
    check_users,
    coverage_result,
    membership_from_option,
)
from ansible_collections.entra.autopilot.plugins.module_utils._errors import EntraError
from ansible_collections.entra.autopilot.plugins.module_utils._graph_client import GraphClient, GraphError
from ansible_collections.entra.autopilot.plugins.module_utils._policy import Membership
from ansible_collections.entra.autopilot.plugins.module_utils._principals import Principal, PrincipalResolver, ResolutionError
from ansible_collections.entra.autopilot.tests.unit.plugins.module_utils.emulator_graph import graph_client

GUEST_UPN = 'jane.doe_fabrikam.com#EXT#@contoso.onmicrosoft.com'


@pytest.fixture
def resolver(emulator, tenant) -> PrincipalResolver:
    return PrincipalResolver(graph_client(emulator, tenant))


@pytest.fixture
def calls(emulator, tenant, resolver):
    """The Graph requests and $batch items (kind, method, path) made since the resolver was built."""
    mark = emulator.control.last_seq()

    def made() -> list[tuple[str, str, str]]:
        return [(entry['kind'], entry['method'], entry['path']) for entry in emulator.control.log(tenant=tenant['tenant_id'], since=mark)
                if entry['kind'] in ('graph', 'batch-item')]
    return made


def selected(users=(), groups=()) -> Membership:
    return Membership('selected', frozenset(DEMO_IDS[name] for name in users), frozenset(DEMO_IDS[name] for name in groups))


def by_entry(results):
    return {item.entry: item for item in results}


def test_listed_directly_via_group_nested_and_not_covered(resolver, calls):
    membership = selected(users=['megan'], groups=['technicians', 'oreilly'])
    results = check_users(resolver, membership, ['MeganB@contoso.com', 'LeeG@contoso.com', GUEST_UPN, DEMO_IDS['grady'], 'AlexW@contoso.com'])
    found = by_entry(results)
    assert [item.entry for item in results] == ['MeganB@contoso.com', 'LeeG@contoso.com', GUEST_UPN, DEMO_IDS['grady'], 'AlexW@contoso.com']
    assert found['MeganB@contoso.com'].covered and found['MeganB@contoso.com'].via == 'listed'
    assert found['MeganB@contoso.com'].reason == 'may join: listed directly in the Selected list.'
    lee = found['LeeG@contoso.com']
    assert lee.covered and lee.via == 'group' and [group.name for group in lee.groups] == ['Autopilot Technicians']
    assert lee.reason == 'may join: member of the selected group Autopilot Technicians.'
    assert found[GUEST_UPN].covered and found[GUEST_UPN].principal.id == DEMO_IDS['jane']
    grady = found[DEMO_IDS['grady']]
    assert grady.covered and grady.principal.name == 'GradyA@contoso.com' and grady.groups[0].name == "O'Reilly Project Team"
    alex = found['AlexW@contoso.com']
    assert not alex.covered and alex.via is None
    assert alex.reason == "cannot join: not in the Selected list and not a member of the selected groups Autopilot Technicians, O'Reilly Project Team."
    # one getByIds (the id entry and both groups' names), one $batch of UPN lookups, one $batch of checkMemberGroups
    made = calls()
    assert [call for call in made if call[0] == 'graph'] == [('graph', 'POST', '/v1.0/directoryObjects/getByIds'),
                                                             ('graph', 'POST', '/v1.0/$batch'), ('graph', 'POST', '/v1.0/$batch')]
    checks = [call for call in made if call[2].endswith('/checkMemberGroups')]
    # Megan is listed directly: her groups are not asked
    expected = ['/v1.0/users/%s/checkMemberGroups' % DEMO_IDS[name] for name in ('lee', 'jane', 'grady', 'alex')]
    assert sorted(path for _kind, _method, path in checks) == sorted(expected)


def test_nested_group_membership_counts(resolver):
    # Adele is in Autopilot Technicians, which is a member of IT Department
    result = check_users(resolver, selected(groups=['it_department']), ['AdeleV@contoso.com'])[0]
    assert result.covered and result.via == 'group' and [group.name for group in result.groups] == ['IT Department']


def test_all_covers_existing_users_without_membership_calls(resolver, calls):
    results = by_entry(check_users(resolver, Membership('all'), ['AlexW@contoso.com', 'nobody@contoso.com']))
    assert results['AlexW@contoso.com'].covered and results['AlexW@contoso.com'].via == 'all'
    assert results['AlexW@contoso.com'].reason == 'may join: "Users may join devices to Microsoft Entra" is All.'
    assert not results['nobody@contoso.com'].covered
    assert results['nobody@contoso.com'].reason == 'cannot join: no user has this userPrincipalName or object id.'
    assert not any(path.endswith('checkMemberGroups') for _kind, _method, path in calls())


def test_none_covers_nobody(resolver):
    result = check_users(resolver, Membership('none'), ['AlexW@contoso.com'])[0]
    assert not result.covered
    assert result.reason == 'cannot join: "Users may join devices to Microsoft Entra" is None, so nobody may join devices.'


def test_selected_without_groups(resolver, calls):
    result = check_users(resolver, selected(users=['megan']), ['AlexW@contoso.com'])[0]
    assert not result.covered and result.reason == 'cannot join: not in the Selected list, which holds no groups.'
    assert not any(path.endswith('checkMemberGroups') for _kind, _method, path in calls())


def test_deleted_listed_group_is_skipped_and_deleted_user_not_covered(resolver):
    deleted_group = str(uuid.uuid4())
    membership = Membership('selected', frozenset({DEMO_IDS['diego_deleted']}), frozenset({DEMO_IDS['technicians'], deleted_group}))
    results = by_entry(check_users(resolver, membership, ['LeeG@contoso.com', DEMO_IDS['diego_deleted']]))
    assert results['LeeG@contoso.com'].covered
    assert [group.name for group in results['LeeG@contoso.com'].groups] == ['Autopilot Technicians']
    assert not results[DEMO_IDS['diego_deleted']].covered


def test_more_than_twenty_groups_are_checked_in_chunks(resolver, calls):
    groups = frozenset([DEMO_IDS['it_department']] + [str(uuid.uuid4()) for _unused in range(CHECK_GROUPS_LIMIT + 5)])
    # names given for every group, as if they all existed: all 26 ids are asked, in two calls
    names = {group_id: Principal(id=group_id, type='group', name='Group %s' % group_id[:8]) for group_id in groups}
    result = check_users(resolver, Membership('selected', frozenset(), groups), ['NestorW@contoso.com'], names=names)[0]
    assert result.covered and [group.id for group in result.groups] == [DEMO_IDS['it_department']]
    checks = [path for _kind, _method, path in calls() if path.endswith('/checkMemberGroups')]
    assert len(checks) == 2


def test_duplicates_and_blank_entries(resolver):
    results = check_users(resolver, Membership('all'), ['AlexW@contoso.com', 'AlexW@contoso.com', ' ', ''])
    assert [item.entry for item in results] == ['AlexW@contoso.com']
    assert check_users(resolver, Membership('all'), []) == []


def test_a_group_given_as_a_user_fails(resolver):
    with pytest.raises(ResolutionError) as failure:
        check_users(resolver, Membership('all'), [DEMO_IDS['technicians']])
    assert 'not a user' in str(failure.value)


def test_missing_permission_names_both_permissions(emulator, tenant):
    # a token that may read users but not group memberships
    token_only = emulator.control.token(tenant['tenant_id'], tenant['client_id'], roles=['User.Read.All'])
    settings = settings_from_params({'access_token': token_only, 'graph_endpoint': emulator.url, 'ca_bundle': emulator.ca_bundle})
    client = GraphClient(build_session(settings), settings.graph_endpoint, settings.api_version, token_only, timeout=30, max_retries=0)
    membership = Membership('selected', frozenset(), frozenset({DEMO_IDS['technicians']}))
    with pytest.raises(GraphError) as failure:
        # names are given, so the only directory calls are the UPN lookup and checkMemberGroups
        check_users(PrincipalResolver(client), membership, ['LeeG@contoso.com'],
                    names={DEMO_IDS['technicians']: Principal(DEMO_IDS['technicians'], 'group', 'Autopilot Technicians')})
    assert failure.value.status == 403
    assert 'User.Read.All and GroupMember.Read.All' in str(failure.value) and 'checkMemberGroups' in str(failure.value)


class TestMembershipFromOption:
    def test_config_shape(self):
        membership = membership_from_option({'allowed_to_join': 'selected', 'users': [DEMO_IDS['adele'].upper()], 'groups': []})
        assert membership == Membership('selected', frozenset({DEMO_IDS['adele']}))
        assert membership_from_option({'allowed_to_join': 'all', 'users': [], 'groups': []}) == Membership('all')

    def test_every_problem_at_once(self):
        with pytest.raises(EntraError) as failure:
            membership_from_option({'allowed_to_join': 'none', 'users': ['AlexW@contoso.com'], 'groups': ['Sales']})
        message = str(failure.value)
        assert message.startswith('Invalid options, nothing was checked:')
        assert 'not AlexW@contoso.com' in message and 'not Sales' in message and 'not none' in message

    def test_unknown_scope(self):
        with pytest.raises(EntraError, match='must be one of all, selected, none'):
            membership_from_option({'allowed_to_join': 'some'})


def test_coverage_result_shape(resolver):
    checked = check_users(resolver, selected(groups=['technicians']), ['LeeG@contoso.com', 'AlexW@contoso.com'])
    result = coverage_result(selected(groups=['technicians']), 'tenant', checked)
    assert result['allowed_to_join'] == 'selected' and result['evaluated'] == 'tenant'
    assert result['uncovered'] == ['AlexW@contoso.com']
    assert result['users'][0] == {'user': 'LeeG@contoso.com', 'id': DEMO_IDS['lee'], 'user_principal_name': 'LeeG@contoso.com',
                                  'display_name': 'Lee Gu', 'covered': True, 'via': 'group',
                                  'groups': [{'id': DEMO_IDS['technicians'], 'display_name': 'Autopilot Technicians'}],
                                  'reason': 'may join: member of the selected group Autopilot Technicians.'}
