# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Users, groups, members, $count, getByIds and paging, including the quoting and encoding traps."""

from __future__ import annotations

import urllib.parse
import uuid

import pytest
from graph_emulator.testing import DEMO_IDS, GraphSession

GUEST_UPN = 'jane.doe_fabrikam.com#EXT#@contoso.onmicrosoft.com'


def _quote(value: str) -> str:
    return urllib.parse.quote(value, safe='@')


def test_user_by_id_and_default_properties(graph, emulator):
    response = graph.get('users/' + DEMO_IDS['adele'])
    assert response.status_code == 200
    user = response.json()
    assert user['@odata.context'] == emulator.url + '/v1.0/$metadata#users/$entity'
    assert set(user) == {'@odata.context', 'businessPhones', 'displayName', 'givenName', 'jobTitle', 'mail', 'mobilePhone', 'officeLocation',
                         'preferredLanguage', 'surname', 'userPrincipalName', 'id'}
    assert user['userPrincipalName'] == 'AdeleV@contoso.com'


def test_user_by_upn_is_case_insensitive(graph):
    assert graph.get('users/adelev@CONTOSO.com').json()['id'] == DEMO_IDS['adele']


def test_guest_upn_needs_percent_encoding(graph):
    assert graph.get('users/' + _quote(GUEST_UPN)).json()['id'] == DEMO_IDS['jane']
    assert '%23EXT%23' in _quote(GUEST_UPN)
    # sent raw, '#' starts the URL fragment: the server sees a different UPN
    assert graph.get('users/' + GUEST_UPN).status_code == 404


def test_apostrophe_upn(graph):
    assert graph.get("users/sean.o'brien@contoso.com").json()['id'] == DEMO_IDS['sean']
    assert graph.get('users/sean.o%27brien@contoso.com').json()['id'] == DEMO_IDS['sean']
    assert graph.get("users('sean.o''brien@contoso.com')").json()['id'] == DEMO_IDS['sean']


def test_dollar_upn_needs_key_syntax(graph):
    response = graph.get('users/$kiosk-setup@contoso.com')
    assert response.status_code == 400 and response.json()['error']['code'] == 'BadRequest'
    assert graph.get("users('$kiosk-setup@contoso.com')").json()['id'] == DEMO_IDS['kiosk']
    assert graph.get("users('%24kiosk-setup%40contoso.com')").json()['id'] == DEMO_IDS['kiosk']
    assert graph.get("users%28%27$kiosk-setup@contoso.com%27%29").json()['id'] == DEMO_IDS['kiosk']


def test_deleted_and_unknown_users(graph):
    for key in (DEMO_IDS['diego_deleted'], 'DiegoS@contoso.com', DEMO_IDS['technicians'], 'nobody@contoso.com'):
        response = graph.get('users/' + key)
        assert response.status_code == 404
        assert response.json()['error']['code'] == 'Request_ResourceNotFound'
        assert key in response.json()['error']['message']


@pytest.mark.parametrize('upn, expected', [('AdeleV@contoso.com', 'adele'), ('ADELEV@contoso.com', 'adele'), (GUEST_UPN, 'jane'),
                                           ("sean.o'brien@contoso.com", 'sean'), ('$kiosk-setup@contoso.com', 'kiosk')])
def test_users_filter_by_upn(graph, upn, expected):
    literal = upn.replace("'", "''")
    response = graph.get('users', params={'$filter': "userPrincipalName eq '%s'" % literal})
    assert [user['id'] for user in response.json()['value']] == [DEMO_IDS[expected]]


def test_filter_syntax_errors(graph):
    response = graph.get('users', params={'$filter': "userPrincipalName eq 'sean.o'brien@contoso.com'"})
    assert response.status_code == 400 and response.json()['error']['code'] == 'BadRequest'
    response = graph.get('users', params={'$filter': "shoeSize eq '42'"})
    assert response.status_code == 400 and 'shoeSize' in response.json()['error']['message']
    response = graph.get('users', params={'$filter': "endswith(mail,'contoso.com')"})
    assert response.status_code == 400 and response.json()['error']['code'] == 'Request_UnsupportedQuery'


def test_users_filter_forms(graph):
    value = graph.get('users', params={'$filter': "startswith(displayName,'a') and userType eq 'Member'",
                                       '$select': 'id,displayName'}).json()['value']
    assert {user['displayName'] for user in value} == {'Adele Vance', 'Alex Wilber'}
    assert all(set(user) == {'id', 'displayName'} for user in value)
    value = graph.get('users', params={'$filter': "id in ('%s', '%s')" % (DEMO_IDS['adele'], DEMO_IDS['sean'])}).json()['value']
    assert {user['id'] for user in value} == {DEMO_IDS['adele'], DEMO_IDS['sean']}
    value = graph.get('users', params={'$filter': "userType eq 'Guest'"}).json()['value']
    assert [user['id'] for user in value] == [DEMO_IDS['jane']]


def test_select(graph, emulator):
    response = graph.get('users/' + DEMO_IDS['adele'], params={'$select': 'id,userPrincipalName,accountEnabled'})
    user = response.json()
    assert user == {'@odata.context': emulator.url + '/v1.0/$metadata#users(id,userPrincipalName,accountEnabled)/$entity',
                    'id': DEMO_IDS['adele'], 'userPrincipalName': 'AdeleV@contoso.com', 'accountEnabled': True}
    assert graph.get('users/' + DEMO_IDS['adele'], params={'select': 'id'}).json() == {
        '@odata.context': emulator.url + '/v1.0/$metadata#users(id)/$entity', 'id': DEMO_IDS['adele']}
    response = graph.get('users/' + DEMO_IDS['adele'], params={'$select': 'id,favouriteColour'})
    assert response.status_code == 400


def test_group_by_id(graph):
    group = graph.get('groups/' + DEMO_IDS['sales_m365']).json()
    assert group['displayName'] == 'Sales' and group['mail'] == 'sales@contoso.com' and group['groupTypes'] == ['Unified']
    assert 'members' not in group
    assert graph.get('groups/' + DEMO_IDS['adele']).status_code == 404


@pytest.mark.parametrize('name, expected', [
    ('Sales', {'sales_m365', 'sales_security'}),
    ('sales', {'sales_m365', 'sales_security'}),
    ("O'Reilly Project Team", {'oreilly'}),
    ('Autopilot Technicians', {'technicians'}),
    ('Autopilot', set()),
    ('No such group', set()),
])
def test_groups_filter_by_display_name(graph, name, expected):
    response = graph.get('groups', params={'$filter': "displayName eq '%s'" % name.replace("'", "''"), '$select': 'id,displayName,mail'})
    assert response.status_code == 200
    value = response.json()['value']
    assert {group['id'] for group in value} == {DEMO_IDS[key] for key in expected}
    assert all(set(group) == {'id', 'displayName', 'mail'} for group in value)


def test_groups_paging(graph, emulator):
    seen = []
    url = graph.url('groups') + '?$top=3&$select=id'
    pages = 0
    while url:
        body = graph.session.get(url, timeout=30).json()
        seen += [group['id'] for group in body['value']]
        assert len(body['value']) <= 3
        url = body.get('@odata.nextLink')
        if url:
            assert url.startswith(emulator.url + '/v1.0/groups?') and '$skiptoken=' in url and '%24top=3' not in url
        pages += 1
    assert pages == 3 and len(seen) == len(set(seen)) == 7
    assert graph.get('groups', params={'$top': '1000'}).status_code == 400
    assert graph.get('groups', params={'$top': '0'}).status_code == 400
    assert graph.get('groups', params={'$skiptoken': 'bogus'}).status_code == 400


def test_members_and_casts(graph):
    members = graph.get('groups/%s/members' % DEMO_IDS['it_department']).json()['value']
    assert {(m['@odata.type'], m['id']) for m in members} == {
        ('#microsoft.graph.user', DEMO_IDS['nestor']), ('#microsoft.graph.user', DEMO_IDS['isaiah']),
        ('#microsoft.graph.group', DEMO_IDS['technicians']), ('#microsoft.graph.user', DEMO_IDS['kiosk'])}
    users = graph.get('groups/%s/members/microsoft.graph.user' % DEMO_IDS['it_department']).json()['value']
    assert len(users) == 3 and all(m['@odata.type'] == '#microsoft.graph.user' for m in users)
    devices = graph.get('groups/%s/members' % DEMO_IDS['devices_group']).json()['value']
    assert {m['@odata.type'] for m in devices} == {'#microsoft.graph.device'}
    assert graph.get('groups/%s/members/microsoft.graph.printer' % DEMO_IDS['devices_group']).json()['error']['code'] == \
        'Request_UnsupportedQuery'


@pytest.mark.parametrize('group, count', [('technicians', 4), ('devices_group', 0), ('empty_group', 0), ('it_department', 3)])
def test_user_count(graph, group, count):
    path = 'groups/%s/members/microsoft.graph.user/$count' % DEMO_IDS[group]
    response = graph.get(path, headers={'ConsistencyLevel': 'eventual'})
    assert response.status_code == 200
    assert response.headers['Content-Type'].startswith('text/plain')
    assert response.text == str(count)
    response = graph.get(path)
    assert response.status_code == 400 and response.json()['error']['code'] == 'Request_UnsupportedQuery'


def test_count_of_all_members_and_list_count(graph):
    response = graph.get('groups/%s/members/$count' % DEMO_IDS['devices_group'], headers={'ConsistencyLevel': 'eventual'})
    assert response.text == '3'
    body = graph.get('groups', params={'$count': 'true', '$top': '2'}, headers={'ConsistencyLevel': 'eventual'}).json()
    assert body['@odata.count'] == 7 and len(body['value']) == 2
    assert graph.get('groups', params={'$count': 'true'}).status_code == 400


def test_get_by_ids(graph, emulator):
    unknown = str(uuid.uuid4())
    ids = [DEMO_IDS['adele'], DEMO_IDS['diego_deleted'], unknown, DEMO_IDS['technicians'], DEMO_IDS['device'], DEMO_IDS['adele'].upper()]
    body = graph.post('directoryObjects/getByIds', json={'ids': ids, 'types': ['user', 'group']}).json()
    assert body['@odata.context'] == emulator.url + '/v1.0/$metadata#directoryObjects'
    assert [(obj['@odata.type'], obj['id']) for obj in body['value']] == [
        ('#microsoft.graph.user', DEMO_IDS['adele']), ('#microsoft.graph.group', DEMO_IDS['technicians'])]
    user = body['value'][0]
    assert user['userPrincipalName'] == 'AdeleV@contoso.com' and 'accountEnabled' not in user
    everything = graph.post('directoryObjects/getByIds', json={'ids': ids}).json()['value']
    assert len(everything) == 3
    only_groups = graph.post('directoryObjects/getByIds', json={'ids': ids, 'types': ['Group']}).json()['value']
    assert [obj['id'] for obj in only_groups] == [DEMO_IDS['technicians']]


@pytest.mark.parametrize('body', [{'ids': ['not-a-guid']}, {'ids': [str(uuid.uuid4()) for _number in range(1001)]}, {},
                                  {'ids': [DEMO_IDS['adele']], 'types': ['spaceship']}])
def test_get_by_ids_rejects(graph, body):
    response = graph.post('directoryObjects/getByIds', json=body)
    assert response.status_code == 400 and response.json()['error']['code'] == 'Request_BadRequest'


def test_large_tenant_paging_and_lookups(emulator):
    tenant_id = str(uuid.uuid4())
    credentials = emulator.control.new_tenant(tenant_id, seed='large')
    graph = GraphSession(emulator.url, emulator.ca_bundle, emulator.control.token(tenant_id, credentials['client_id']))
    big_group = graph.policy()['azureADJoin']['allowedToJoin']['groups'][0]
    count = graph.get('groups/%s/members/microsoft.graph.user/$count' % big_group, headers={'ConsistencyLevel': 'eventual'}).text
    assert count == '1500'
    ids, url, pages = [], graph.url('groups/%s/members' % big_group), 0
    while url:
        body = graph.session.get(url, timeout=30).json()
        ids += [member['id'] for member in body['value']]
        url, pages = body.get('@odata.nextLink'), pages + 1
    assert pages == 15 and len(set(ids)) == 1500
    found = graph.post('directoryObjects/getByIds', json={'ids': ids[:1000], 'types': ['user']}).json()['value']
    assert len(found) == 1000
    response = graph.get('users', params={'$filter': "userPrincipalName eq 'STUDENT0042@school.example'"})
    assert response.json()['value'][0]['displayName'] == 'Student 0042'
    emulator.control.delete_tenant(tenant_id)
