# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The device_join role's result, built from the registered results of its tasks (shapes as the modules return them)."""

from __future__ import annotations

from ansible_collections.entra.autopilot.plugins.filter.device_join import FilterModule
from ansible_collections.entra.autopilot.plugins.plugin_utils._join_summary import not_applicable, summarize

ALEX, MEGAN, DELETED = '158bda81-2b50-4c46-92a9-ed995f53b63b', 'cd4e460e-f211-4a48-827a-82c054036213', '845f4493-b41a-4e1b-8640-d31c1282cb20'
TECHS, IT = '6cd0d409-6780-4876-ae1c-fea043980712', 'b2fe566c-04e8-4286-a869-2f3e88ba3715'
SKIPPED = {'changed': False, 'skipped': True, 'skip_reason': 'Conditional result was False'}


def config(scope='selected', users=(), groups=(), quota=50, mfa=False, laps=False, registering='all'):
    return {'allowed_to_join': scope, 'users': sorted(users), 'groups': sorted(groups), 'user_device_quota': quota, 'require_mfa': mfa,
            'local_admins': {'global_admins': True, 'registering_users': registering, 'users': [], 'groups': []}, 'laps_enabled': laps}


def readable(scope='selected', users=(), groups=(), **kwargs):
    value = config(scope, (), (), **kwargs)
    value['users'], value['groups'] = sorted(users, key=str.lower), sorted(groups, key=str.lower)
    return value


BEFORE = {'changed': False, 'config': config(users=[MEGAN, DELETED], groups=[TECHS]),
          'members': {'users': [{'id': MEGAN, 'user_principal_name': 'MeganB@contoso.com', 'display_name': 'Megan Bowen'}],
                      'groups': [{'id': TECHS, 'display_name': 'Autopilot Technicians', 'contains_users': True}],
                      'unresolved': [DELETED]}}


def test_additive_member_added_and_policy_unchanged():
    policy = {'changed': False, 'config': BEFORE['config'],
              'diff': {'before': readable(users=['MeganB@contoso.com', DELETED + ' (deleted)'], groups=['Autopilot Technicians']),
                       'after': readable(users=['MeganB@contoso.com', DELETED + ' (deleted)'], groups=['Autopilot Technicians'])}}
    member = {'changed': True, 'added': [{'id': ALEX, 'type': 'user', 'name': 'AlexW@contoso.com'},
                                         {'id': IT, 'type': 'group', 'name': 'IT Department'}], 'removed': [],
              'config': config(users=[MEGAN, DELETED, ALEX], groups=[TECHS, IT])}
    coverage = {'changed': False, 'coverage': {'allowed_to_join': 'selected', 'evaluated': 'check_against', 'uncovered': ['PattiF@contoso.com'],
                                               'users': [{'user': 'AlexW@contoso.com', 'covered': True, 'via': 'listed',
                                                          'reason': 'may join: listed directly in the Selected list.'},
                                                         {'user': 'PattiF@contoso.com', 'covered': False, 'via': None,
                                                          'reason': 'cannot join: not in the Selected list.'}]}}
    summary = summarize(BEFORE, policy, member, coverage, scenario='pre_provisioned', membership='additive', check_mode=True)
    assert summary['changed'] and summary['applies']
    assert summary['scope'] == {'before': 'selected', 'after': 'selected'}
    assert summary['add'] == {'users': ['AlexW@contoso.com'], 'groups': ['IT Department']}
    assert summary['remove'] == {'users': [], 'groups': []}
    assert summary['settings'] == []
    assert summary['config'] == member['config']
    assert summary['uncovered'] == ['PattiF@contoso.com']
    assert summary['scenario'] == 'pre_provisioned' and summary['membership'] == 'additive'
    assert summary['report'] == ['"Users may join devices to Microsoft Entra" would be Selected.', 'Would add users: AlexW@contoso.com.',
                                 'Would add groups: IT Department.',
                                 'Required member AlexW@contoso.com may join: listed directly in the Selected list.',
                                 'Required member PattiF@contoso.com cannot join: not in the Selected list.']
    assert summary['uncovered_message'] == (
        '1 of the 2 required members cannot join devices to Microsoft Entra once this run is applied (check mode): PattiF@contoso.com '
        'cannot join: not in the Selected list. Add them, or a group they are in, to device_join_users or device_join_groups, or set '
        'device_join_allowed_to_join: all.')


def test_exclusive_replaces_list_and_settings_by_name():
    policy = {'changed': True, 'config': config(users=[ALEX], groups=[IT], quota=20, laps=True, registering='none'),
              'diff': {'before': readable(users=['MeganB@contoso.com', DELETED + ' (deleted)'], groups=['Autopilot Technicians']),
                       'after': readable(users=['AlexW@contoso.com'], groups=['IT Department'], quota=20, laps=True, registering='none')}}
    summary = summarize(BEFORE, policy, SKIPPED, SKIPPED, membership='exclusive')
    assert summary['add'] == {'users': ['AlexW@contoso.com'], 'groups': ['IT Department']}
    assert summary['remove'] == {'users': [DELETED + ' (deleted)', 'MeganB@contoso.com'], 'groups': ['Autopilot Technicians']}
    assert summary['settings'] == [{'setting': 'user_device_quota', 'before': '50', 'after': '20'},
                                   {'setting': 'local_admins.registering_users', 'before': 'all', 'after': 'none'},
                                   {'setting': 'laps_enabled', 'before': 'no', 'after': 'yes'}]
    assert summary['required_members'] == [] and summary['uncovered_message'] == ''
    assert 'Changed user_device_quota from 50 to 20.' in summary['report']
    assert 'Removed groups: Autopilot Technicians.' in summary['report']


def test_scope_from_all_to_selected_lists_everyone_added():
    before = {'config': config('all'), 'members': {'users': [], 'groups': [], 'unresolved': []}}
    policy = {'changed': True, 'config': config(users=[ALEX]),
              'diff': {'before': readable('all'), 'after': readable(users=['AlexW@contoso.com'])}}
    summary = summarize(before, policy, SKIPPED, None)
    assert summary['scope'] == {'before': 'all', 'after': 'selected'}
    assert summary['add']['users'] == ['AlexW@contoso.com'] and summary['remove'] == {'users': [], 'groups': []}
    assert summary['report'][0] == '"Users may join devices to Microsoft Entra" is Selected (was All).'


def test_selected_to_all_reports_the_scope_not_removals():
    policy = {'changed': True, 'config': config('all'),
              'diff': {'before': readable(users=['MeganB@contoso.com'], groups=['Autopilot Technicians']), 'after': readable('all')}}
    summary = summarize(BEFORE, policy, SKIPPED, None)
    assert summary['scope'] == {'before': 'selected', 'after': 'all'}
    assert summary['add'] == summary['remove'] == {'users': [], 'groups': []}


def test_two_groups_with_one_name_count_as_two():
    policy = {'changed': True, 'config': config(groups=['a', 'b']),
              'diff': {'before': readable(groups=['Sales']), 'after': readable(groups=['Sales', 'Sales'])}}
    assert summarize(BEFORE, policy, SKIPPED, None)['add']['groups'] == ['Sales']


def test_without_diff_falls_back_to_ids_and_names_read_before():
    policy = {'changed': True, 'config': config(users=[ALEX], groups=[TECHS])}
    summary = summarize(BEFORE, policy, SKIPPED, None)
    assert summary['add']['users'] == [ALEX]
    assert summary['remove']['users'] == [DELETED + ' (deleted)', 'MeganB@contoso.com']


def test_nothing_changed():
    policy = {'changed': False, 'config': BEFORE['config'], 'diff': {'before': readable(), 'after': readable()}}
    summary = summarize(BEFORE, policy, {'changed': False, 'added': [], 'removed': [], 'config': BEFORE['config']}, None)
    assert not summary['changed']
    assert summary['report'] == ['"Users may join devices to Microsoft Entra" is Selected; nothing changed.']


def test_not_applicable_and_filter_entry_point():
    summary = not_applicable('hybrid', 'Nothing was changed: ...', host='devices')
    assert summary['applies'] is False and summary['changed'] is False and summary['report'] == ['Nothing was changed: ...']
    filters = FilterModule().filters()
    assert filters['device_join_summary']({}, scenario='self_deploying', reason='why')['applies'] is False
    assert filters['device_join_summary'](BEFORE, policy=SKIPPED, scenario='user_driven')['scenario'] == 'user_driven'


def test_merge_requests_unions_lists_and_names_conflicts():
    merge = FilterModule().filters()['device_join_merge']
    base = {'allowed_to_join': 'selected', 'membership': 'additive', 'user_device_quota': None, 'require_mfa': None,
            'local_admins': None, 'laps_enabled': None, 'groups': [], 'required_members': []}
    merged = merge([dict(base, users=['LeeG@contoso.com'], required_members=['LeeG@contoso.com']),
                    dict(base, users=['PattiF@contoso.com', 'LeeG@contoso.com'], groups=['IT Department'])])
    assert merged == {'users': ['LeeG@contoso.com', 'PattiF@contoso.com'], 'groups': ['IT Department'],
                      'required_members': ['LeeG@contoso.com'], 'conflicts': []}
    conflicting = merge([dict(base, users=[]), dict(base, users=[], allowed_to_join='all', local_admins={'global_admins': False})])
    assert conflicting['conflicts'] == ['device_join_allowed_to_join', 'device_join_local_admins']
