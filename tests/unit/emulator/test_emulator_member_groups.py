# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""checkMemberGroups: transitive membership, its limits, permissions, and use inside $batch."""

from __future__ import annotations

import uuid

import pytest
from graph_emulator.testing import DEMO_IDS, GraphSession

GUEST_UPN = 'jane.doe_fabrikam.com#EXT#@contoso.onmicrosoft.com'


def _check(graph, path, group_ids):
    return graph.post(path + '/checkMemberGroups', json={'groupIds': group_ids})


def test_direct_and_nested_membership(graph):
    # Adele is in "Autopilot Technicians", which is itself a member of "IT Department"
    groups = [DEMO_IDS['technicians'], DEMO_IDS['it_department'], DEMO_IDS['sales_m365']]
    response = _check(graph, 'users/' + DEMO_IDS['adele'], groups)
    assert response.status_code == 200
    body = response.json()
    assert body['@odata.context'].endswith('/v1.0/$metadata#Collection(Edm.String)')
    assert body['value'] == [DEMO_IDS['technicians'], DEMO_IDS['it_department']]


def test_by_upn_case_insensitive_and_guest(graph):
    assert _check(graph, 'users/ADELEV@contoso.com', [DEMO_IDS['it_department']]).json()['value'] == [DEMO_IDS['it_department']]
    guest = 'users/' + GUEST_UPN.replace('#', '%23')
    assert _check(graph, guest, [DEMO_IDS['technicians']]).json()['value'] == [DEMO_IDS['technicians']]


def test_dollar_upn_needs_key_syntax(graph):
    assert _check(graph, 'users/$kiosk-setup@contoso.com', [DEMO_IDS['it_department']]).status_code == 400
    response = _check(graph, "users('$kiosk-setup@contoso.com')", [DEMO_IDS['it_department']])
    assert response.json()['value'] == [DEMO_IDS['it_department']]


def test_not_a_member_unknown_and_duplicate_groups(graph):
    unknown = str(uuid.uuid4())
    groups = [DEMO_IDS['technicians'], unknown, DEMO_IDS['sales_m365'], DEMO_IDS['sales_m365'].upper()]
    response = _check(graph, 'users/' + DEMO_IDS['alex'], groups)
    assert response.status_code == 200
    assert response.json()['value'] == [DEMO_IDS['sales_m365']]


def test_group_and_directory_object_forms(graph):
    assert _check(graph, 'groups/' + DEMO_IDS['technicians'], [DEMO_IDS['it_department']]).json()['value'] == [DEMO_IDS['it_department']]
    path = 'directoryObjects/' + DEMO_IDS['device']
    assert _check(graph, path, [DEMO_IDS['devices_group'], DEMO_IDS['it_department']]).json()['value'] == [DEMO_IDS['devices_group']]
    namespaced = graph.post('users/%s/microsoft.graph.checkMemberGroups' % DEMO_IDS['lee'], json={'groupIds': [DEMO_IDS['technicians']]})
    assert namespaced.json()['value'] == [DEMO_IDS['technicians']]


def test_cycle_of_groups_ends(emulator):
    tenant_id = str(uuid.uuid4())
    user, first, second = (str(uuid.uuid4()) for _unused in range(3))
    state = {
        'users': [{'id': user, 'userPrincipalName': 'cycle@contoso.com', 'displayName': 'Cycle'}],
        'groups': [{'id': first, 'displayName': 'First', 'members': [user, second]},
                   {'id': second, 'displayName': 'Second', 'members': [first]}],
        'apps': [{'name': 'automation', 'client_id': str(uuid.uuid4()), 'permissions': ['Directory.Read.All'], 'credentials': {'secret': True}}],
    }
    credentials = emulator.control.new_tenant(tenant_id, state=state)
    try:
        graph = GraphSession(emulator.url, emulator.ca_bundle, emulator.control.token(tenant_id, credentials['client_id']))
        assert sorted(_check(graph, 'users/' + user, [first, second]).json()['value']) == sorted([first, second])
        assert _check(graph, 'groups/' + first, [first]).json()['value'] == [first]
    finally:
        emulator.control.delete_tenant(tenant_id)


@pytest.mark.parametrize('body, fragment', [
    ({}, "parameter 'groupIds'"),
    ({'groupIds': 'not-a-list'}, "parameter 'groupIds'"),
    ({'groupIds': ['Autopilot Technicians']}, "Invalid object identifier 'Autopilot Technicians'"),
    ({'groupIds': [str(uuid.uuid4()) for _unused in range(21)]}, "cannot exceed '20'"),
])
def test_bad_requests(graph, body, fragment):
    response = graph.post('users/%s/checkMemberGroups' % DEMO_IDS['adele'], json=body)
    assert response.status_code == 400
    assert response.json()['error']['code'] == 'Request_BadRequest'
    assert fragment in response.json()['error']['message']


def test_twenty_groups_are_fine(graph):
    groups = [DEMO_IDS['technicians']] + [str(uuid.uuid4()) for _unused in range(19)]
    assert _check(graph, 'users/' + DEMO_IDS['adele'], groups).json()['value'] == [DEMO_IDS['technicians']]


def test_unknown_and_deleted_users(graph):
    for key in ('nobody@contoso.com', DEMO_IDS['diego_deleted']):
        response = _check(graph, 'users/' + key, [DEMO_IDS['technicians']])
        assert response.status_code == 404
        assert response.json()['error']['code'] == 'Request_ResourceNotFound'


def test_only_post(graph):
    response = graph.get('users/%s/checkMemberGroups' % DEMO_IDS['adele'])
    assert response.status_code == 405


def test_permissions(graph_as):
    # the policy-only app may read users by no permission at all; the read-only app has Directory.Read.All
    response = _check(graph_as('policy-only'), 'users/' + DEMO_IDS['adele'], [DEMO_IDS['technicians']])
    assert response.status_code == 403
    assert response.json()['error']['code'] == 'Authorization_RequestDenied'
    assert _check(graph_as('readonly'), 'users/' + DEMO_IDS['adele'], [DEMO_IDS['technicians']]).json()['value'] == [DEMO_IDS['technicians']]


def test_inside_batch(graph, emulator, tenant):
    requests = [{'id': name, 'method': 'POST', 'url': '/users/%s/checkMemberGroups' % DEMO_IDS[name],
                 'headers': {'Content-Type': 'application/json'},
                 'body': {'groupIds': [DEMO_IDS['technicians'], DEMO_IDS['it_department']]}}
                for name in ('adele', 'nestor', 'alex')]
    response = graph.post('$batch', json={'requests': requests})
    assert response.status_code == 200
    answers = {item['id']: item for item in response.json()['responses']}
    assert answers['adele']['body']['value'] == [DEMO_IDS['technicians'], DEMO_IDS['it_department']]
    assert answers['nestor']['body']['value'] == [DEMO_IDS['it_department']]
    assert answers['alex']['status'] == 200 and answers['alex']['body']['value'] == []
    log = emulator.control.log(tenant=tenant['tenant_id'])
    items = [entry for entry in log if entry['kind'] == 'batch-item']
    assert [entry['path'] for entry in items[-3:]] == ['/v1.0/users/%s/checkMemberGroups' % DEMO_IDS[name] for name in ('adele', 'nestor', 'alex')]
    assert items[-1]['body'] == {'groupIds': [DEMO_IDS['technicians'], DEMO_IDS['it_department']]}


def test_batch_item_without_content_type_is_rejected(graph):
    requests = [{'id': '1', 'method': 'POST', 'url': '/users/%s/checkMemberGroups' % DEMO_IDS['adele'],
                 'body': {'groupIds': [DEMO_IDS['technicians']]}}]
    assert graph.post('$batch', json={'requests': requests}).status_code == 400
