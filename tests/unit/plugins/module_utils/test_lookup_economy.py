# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Nothing is looked up that the decision does not need: whole module runs against the emulator, counted in its log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing as t

import pytest

MEGAN = 'cd4e460e-f211-4a48-827a-82c054036213'
DIEGO_DELETED = '845f4493-b41a-4e1b-8640-d31c1282cb20'
ALEX = '158bda81-2b50-4c46-92a9-ed995f53b63b'
TECHNICIANS = '6cd0d409-6780-4876-ae1c-fea043980712'
DEVICES_ONLY = '51d6b0b6-77aa-46b0-8eac-4b9b28c2be21'
POLICY_GET = ('GET', '/v1.0/policies/deviceRegistrationPolicy')
GET_BY_IDS = ('POST', '/v1.0/directoryObjects/getByIds')
BATCH = ('POST', '/v1.0/$batch')
PUT = ('PUT', '/v1.0/policies/deviceRegistrationPolicy')
POLICY, MEMBER = 'entra_device_join_policy', 'entra_device_join_member'


@pytest.fixture
def run(emulator, tenant, tmp_path):
    """run(module, check=False, diff=False, **options) -> (result, [(method, path)] of Graph, number of token requests).

    Each run is a process of its own, as a task is (so msal starts with an empty in-memory cache every time), with
    its locks and token cache in the test's own temp folder.
    """
    def invoke(module: str, check: bool = False, diff: bool = False, **options: t.Any) -> tuple[dict, list[tuple[str, str]], int]:
        args = {'tenant_id': tenant['tenant_id'], 'client_id': tenant['client_id'], 'client_secret': tenant['client_secret'],
                'authority_host': tenant['authority_host'], 'graph_endpoint': tenant['graph_endpoint'], 'ca_bundle': tenant['ca_bundle'],
                '_ansible_check_mode': check, '_ansible_diff': diff}
        args.update(options)
        args_file = tmp_path / 'args.json'
        args_file.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': args}), encoding='utf-8')
        env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONPATH=os.pathsep.join(path for path in sys.path if path))
        since = emulator.control.last_seq()
        done = subprocess.run([sys.executable, '-m', 'ansible_collections.entra.autopilot.plugins.modules.' + module, str(args_file)],
                              env=env, capture_output=True, text=True, timeout=120, check=False)
        assert done.stdout.strip().startswith('{'), done.stderr[-2000:]
        result = json.loads(done.stdout)
        entries = emulator.control.log(tenant=tenant['tenant_id'], since=since)
        calls = [(entry['method'], entry['path']) for entry in entries if entry['kind'] == 'graph']
        return result, calls, sum(1 for entry in entries if entry['kind'] == 'token')
    return invoke


# the demo tenant's Selected list: Megan, the deleted Diego, the Autopilot Technicians group
AS_IS = {'allowed_to_join': 'selected', 'users': [MEGAN, DIEGO_DELETED.upper()], 'groups': [TECHNICIANS]}


@pytest.mark.parametrize('check', [False, True])
def test_idempotent_run_with_ids_reads_the_policy_and_nothing_else(run, check):
    result, calls, tokens = run(POLICY, check=check, **AS_IS)
    assert result['changed'] is False and result['config']['users'] == sorted([MEGAN, DIEGO_DELETED])
    assert (calls, tokens) == ([POLICY_GET], 1)


def test_with_the_token_cache_the_next_run_asks_for_no_token(run):
    assert run(POLICY, token_cache=True, **AS_IS)[1:] == ([POLICY_GET], 1)
    assert run(POLICY, token_cache=True, **AS_IS)[1:] == ([POLICY_GET], 0)


def test_diff_mode_looks_up_the_names_it_shows(run):
    result, calls, _tokens = run(POLICY, check=True, diff=True, **AS_IS)
    assert calls == [POLICY_GET, GET_BY_IDS]
    assert result['diff']['before']['users'] == [DIEGO_DELETED + ' (deleted)', 'MeganB@contoso.com']


def test_only_new_ids_are_checked(emulator, tenant, run):
    since = emulator.control.last_seq()
    result, calls, _tokens = run(POLICY, check=True, **dict(AS_IS, users=[MEGAN, DIEGO_DELETED, ALEX]))
    assert result['changed'] is True and calls == [POLICY_GET, GET_BY_IDS]
    [lookup] = [entry for entry in emulator.control.log(tenant=tenant['tenant_id'], since=since) if entry['path'].endswith('getByIds')]
    assert lookup['body']['ids'] == [ALEX]


def test_a_new_id_that_does_not_exist_still_fails(run):
    result, _calls, _tokens = run(POLICY, check=True, **dict(AS_IS, users=[MEGAN, '00000000-0000-4000-8000-000000000bad']))
    assert result['failed'] and 'no user or group has this object id' in result['msg']


def test_a_listed_id_under_the_other_kind_is_still_checked(run):
    result, calls, _tokens = run(POLICY, check=True, **dict(AS_IS, users=[MEGAN, TECHNICIANS]))
    assert result['failed'] and 'this is the group Autopilot Technicians, not a user' in result['msg']
    assert calls == [POLICY_GET, GET_BY_IDS]


@pytest.mark.parametrize('check', [False, True])
def test_a_deleted_users_id_given_as_a_group_fails_before_any_write(run, check):
    # kept under users it may stay; moved to groups Graph would refuse the PUT (and no user could join through it)
    result, calls, _tokens = run(POLICY, check=check, **dict(AS_IS, users=[MEGAN], groups=[TECHNICIANS, DIEGO_DELETED]))
    assert result['failed'] and result['entries'] == [DIEGO_DELETED]
    assert 'it is the id of a deleted object listed under users' in result['msg']
    assert calls == [POLICY_GET, GET_BY_IDS]  # checked, refused, nothing written


def test_names_take_one_batch_per_twenty_and_no_get_by_ids(emulator, tenant, run):
    state = emulator.control.state(tenant['tenant_id'])
    state['generated_users'] = [{'count': 45, 'userPrincipalName': 'tech{n:02d}@contoso.com', 'displayName': 'Technician {n}'}]
    emulator.control.new_tenant(tenant['tenant_id'], state=state)
    upns = ['tech%02d@contoso.com' % number for number in range(1, 46)]
    first, calls, _tokens = run(POLICY, allowed_to_join='selected', users=upns, groups=[TECHNICIANS])
    assert first['changed'] is True
    again, calls, tokens = run(POLICY, allowed_to_join='selected', users=upns, groups=[TECHNICIANS])
    assert again['changed'] is False and again['config'] == first['config']
    assert (calls, tokens) == ([POLICY_GET] + [BATCH] * 3, 1)


def test_a_group_moved_to_the_other_list_still_gets_its_warning(emulator, tenant, run):
    policy = emulator.control.state(tenant['tenant_id'])['policy']
    policy['azureADJoin']['allowedToJoin']['groups'] = [DEVICES_ONLY]
    emulator.control.set_policy(tenant['tenant_id'], policy)
    result, calls, _tokens = run(POLICY, check=True, local_admins={'registering_users': 'selected', 'groups': [DEVICES_ONLY]})
    assert result['changed'] is True
    # warnings are plain strings before ansible-core 2.19, structured events after
    assert 'Autopilot Devices (%s) contains no user objects' % DEVICES_ONLY in json.dumps(result.get('warnings', []))
    assert calls == [POLICY_GET, GET_BY_IDS, BATCH]


def test_member_adds_one_user_by_upn_with_one_lookup(run):
    result, calls, tokens = run(MEMBER, check=True, users=['AlexW@contoso.com'])
    assert result['changed'] is True and result['added'] == [{'id': ALEX, 'type': 'user', 'name': 'AlexW@contoso.com'}]
    assert (calls, tokens) == ([POLICY_GET, BATCH], 1)
    result, calls, tokens = run(MEMBER, users=['AlexW@contoso.com'])
    assert result['added'] == [{'id': ALEX, 'type': 'user', 'name': 'AlexW@contoso.com'}]
    # the read under the lock and the read-back after the write are what keeps parallel writers from losing updates
    assert (calls, tokens) == ([POLICY_GET, BATCH, POLICY_GET, PUT, POLICY_GET], 1)


def test_member_present_with_a_listed_id_looks_up_nothing(run):
    result, calls, _tokens = run(MEMBER, check=True, users=[MEGAN])
    assert result['changed'] is False and calls == [POLICY_GET]


def test_member_absent_still_names_what_it_removes(run):
    result, calls, _tokens = run(MEMBER, check=True, users=[MEGAN, DIEGO_DELETED], state='absent')
    assert result['removed'] == [{'id': DIEGO_DELETED, 'type': 'user', 'name': None},
                                 {'id': MEGAN, 'type': 'user', 'name': 'MeganB@contoso.com'}]
    assert calls == [POLICY_GET, GET_BY_IDS]


def test_member_diff_names_the_whole_list(run):
    result, calls, _tokens = run(MEMBER, check=True, diff=True, users=['AlexW@contoso.com'])
    assert calls == [POLICY_GET, GET_BY_IDS, BATCH]
    assert result['diff']['after']['users'] == [DIEGO_DELETED + ' (deleted)', 'AlexW@contoso.com', 'MeganB@contoso.com']
