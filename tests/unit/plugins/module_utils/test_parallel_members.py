# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""20 writers at once against one tenant: the lock and the read-back keep every update; without them updates are lost.

Each writer has its own msal login and GraphClient (as each Ansible fork has), starts its read-modify-write at the
same moment as the others, and the emulator delays every GET and PUT of the policy, so the reads and writes of the
writers overlap the way they do against a busy Graph. The integration target entra_device_join_member_parallel runs
the same scenario as 20 real Ansible forks.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from ansible_collections.entra.autopilot.plugins.module_utils._lock import tenant_lock
from ansible_collections.entra.autopilot.plugins.module_utils._member_change import Applied, MemberChange, apply_member_change
from ansible_collections.entra.autopilot.plugins.module_utils._policy import parse_policy
from ansible_collections.entra.autopilot.plugins.module_utils._policy_store import POLICY_PATH, PolicyStore
from ansible_collections.entra.autopilot.plugins.module_utils._principals import PrincipalResolver
from ansible_collections.entra.autopilot.tests.unit.plugins.module_utils.emulator_graph import graph_client

WRITERS = 20
LATENCY = 0.25  # seconds added to every policy GET and PUT
MEGAN = 'cd4e460e-f211-4a48-827a-82c054036213'
DIEGO_DELETED = '845f4493-b41a-4e1b-8640-d31c1282cb20'
TECHNICIANS = '6cd0d409-6780-4876-ae1c-fea043980712'


@pytest.fixture
def crowd(emulator, tenant) -> list[str]:
    """The demo tenant plus WRITERS more users; returns their object ids."""
    state = emulator.control.state(tenant['tenant_id'])
    # the demo's own users stay; each writer gets one more (ids are the emulator's uuid5 of the UPN)
    state['generated_users'] = [{'count': WRITERS, 'userPrincipalName': 'onboarding{n:02d}@contoso.com',
                                 'displayName': 'Onboarding user {n}'}]
    emulator.control.new_tenant(tenant['tenant_id'], state=state)
    upns = ['onboarding%02d@contoso.com' % number for number in range(1, WRITERS + 1)]
    resolved = PrincipalResolver(graph_client(emulator, tenant)).resolve(upns, [])
    return sorted(principal.id for principal in resolved.users.values())


@pytest.fixture
def slow_policy(emulator, tenant):
    """Every GET and PUT of the tenant's policy takes LATENCY seconds longer, until the test ends."""
    for method in ('GET', 'PUT'):
        emulator.control.fault(tenant=tenant['tenant_id'], method=method, path=POLICY_PATH + '$', latency=LATENCY, count=-1)
    yield
    emulator.control.clear_faults()


def run_writers(emulator, tenant, changes: list[MemberChange], *, locked: bool, verify: bool) -> list[Applied]:
    """One thread per change, each with its own login; all start their read-modify-write at the same moment."""
    start = threading.Barrier(len(changes))
    lock: Callable | None = (lambda: tenant_lock(emulator.url, tenant['tenant_id'])) if locked else None

    def writer(change: MemberChange) -> Applied:
        store = PolicyStore(graph_client(emulator, tenant, timeout=60))
        start.wait(timeout=60)
        return apply_member_change(store, change, lock=lock, verify=verify)

    with ThreadPoolExecutor(max_workers=len(changes)) as pool:
        return list(pool.map(writer, changes))


def stored(emulator, tenant) -> dict:
    return emulator.control.state(tenant['tenant_id'])['policy']


def others(policy: dict, crowd: list[str]) -> dict:
    """The policy without the crowd's ids: what the writers must leave exactly as it was."""
    rest = copy.deepcopy(policy)
    join = rest['azureADJoin']['allowedToJoin']
    join['users'] = [user for user in join.get('users', []) if user.lower() not in crowd]
    return rest


def one_each(state: str, crowd: list[str]) -> list[MemberChange]:
    return [MemberChange(state=state, users=frozenset({user}), entries=(user,)) for user in crowd]


def test_twenty_writers_with_the_lock_keep_every_update(emulator, tenant, crowd, slow_policy):
    original = stored(emulator, tenant)

    added = run_writers(emulator, tenant, one_each('present', crowd), locked=True, verify=True)
    join = parse_policy(stored(emulator, tenant)).allowed_to_join
    assert set(crowd) <= join.users, 'lost: %s' % sorted(set(crowd) - join.users)
    assert all(result.writes == 1 and result.decision.added_users for result in added)
    assert others(stored(emulator, tenant), crowd) == original
    assert join.users == {MEGAN, DIEGO_DELETED, *crowd} and join.groups == {TECHNICIANS}

    removed = run_writers(emulator, tenant, one_each('absent', crowd), locked=True, verify=True)
    assert parse_policy(stored(emulator, tenant)).allowed_to_join.users == {MEGAN, DIEGO_DELETED}
    assert all(result.writes == 1 for result in removed)
    assert stored(emulator, tenant) == original


def test_twenty_writers_without_the_lock_and_read_back_lose_updates(emulator, tenant, crowd, slow_policy):
    """The same scenario with the lock and the read-back turned off: the test above would fail."""
    original = stored(emulator, tenant)

    added = run_writers(emulator, tenant, one_each('present', crowd), locked=False, verify=False)
    landed = set(crowd) & parse_policy(stored(emulator, tenant)).allowed_to_join.users
    # every writer believed it had added its user ...
    assert all(result.writes == 1 for result in added)
    # ... but the writers read the same list, and each PUT replaced the list of the one before
    assert len(landed) < WRITERS, 'no update was lost, so this scenario does not prove the lock is needed'
    print('\nwithout the lock: %d of %d added users landed' % (len(landed), WRITERS))

    # start the removals from the complete list
    emulator.control.set_policy(tenant['tenant_id'], with_users(original, crowd))
    run_writers(emulator, tenant, one_each('absent', crowd), locked=False, verify=False)
    left = set(crowd) & parse_policy(stored(emulator, tenant)).allowed_to_join.users
    assert left, 'no removal was lost, so this scenario does not prove the lock is needed'
    print('without the lock: %d of %d removed users are still listed' % (len(left), WRITERS))


def with_users(policy: dict, users: list[str]) -> dict:
    result = copy.deepcopy(policy)
    result['azureADJoin']['allowedToJoin']['users'] += users
    return result
