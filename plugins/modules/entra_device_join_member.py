#!/usr/bin/python
# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: entra_device_join_member
short_description: Add or remove single users and groups in the Selected list of who may join devices to Microsoft Entra
version_added: 0.1.0
description:
  - Adds users and groups to, or removes them from, the B(Selected) list of the Microsoft Entra device setting
    C(Users may join devices to Microsoft Entra) (Microsoft Graph C(policies/deviceRegistrationPolicy),
    C(azureADJoin.allowedToJoin)), like B(Add members) in the Entra admin center.
  - Only the named entries change. Every other entry of the list stays as it is, including ids of deleted objects
    that the task does not name, and so does every other setting of the device registration policy.
  - The module never changes the join scope. While the scope is B(All), adding or removing changes nothing and
    warns; while it is B(None), adding fails and removing changes nothing. Use
    M(entra.autopilot.entra_device_join_policy) to set O(entra.autopilot.entra_device_join_policy#module:allowed_to_join)
    or to manage the complete list.
  - Entries are compared by object id, so the order, duplicates and the case of userPrincipalNames never cause a change.
author:
  - entra.autopilot contributors (@entra-autopilot)
options:
  users:
    description:
      - Users to add or remove, each as an object id or a userPrincipalName (guests as their C(#EXT#) UPN).
      - With O(state=present) every entry must name an existing user; otherwise the task fails and writes nothing.
      - With O(state=absent) an object id is removed even when the user was deleted, and a UPN that names no user is
        already absent (no change, a warning).
    type: list
    elements: str
  groups:
    description:
      - Groups to add or remove, each as an object id or an exact display name.
      - A display name shared by several groups fails the task, listing the candidates' ids; use the id then.
      - A group being added that has no user members gets a warning, since only users in a group can join devices.
    type: list
    elements: str
  state:
    description:
      - V(present) adds the entries that are not in the list yet.
      - V(absent) removes the entries that are in the list. Removing the last member keeps the scope Selected,
        which means nobody can join devices, and warns about it.
    type: str
    choices: [present, absent]
    default: present
notes:
  - Graph offers no ETag for this policy, and a write replaces the whole policy, so two writers that read before
    either writes lose one update. The module therefore takes a per-tenant file lock on the controller around
    read, write and read-back. This serialises every fork of one controller (for example an AWX job running the
    task for many hosts with C(delegate_to=localhost)).
  - Separate controllers (two AWX nodes, or this module and the Entra admin center or another tool) are not serialised
    by the lock. After each write the module reads the policy back and writes again, up to 5 times, when its own
    change was undone, so a lost update of its own is caught and repaired; a change that another tool loses through
    this module's write is not visible to this module.
  - Required Graph permissions - Policy.ReadWrite.DeviceConfiguration (application), or the Cloud Device Administrator
    role for delegated tokens, plus User.Read.All and Group.Read.All to resolve names.
seealso:
  - module: entra.autopilot.entra_device_join_policy
  - module: entra.autopilot.entra_device_join_policy_info
  - name: Manage device identities in the Microsoft Entra admin center
    description: What "Users may join devices to Microsoft Entra" does.
    link: https://learn.microsoft.com/entra/identity/devices/manage-device-identities
extends_documentation_fragment:
  - entra.autopilot.connection
  - entra.autopilot.attributes
  - entra.autopilot.attributes.action_group
attributes:
  check_mode:
    support: full
    details:
      - Makes the same reads and the same decision as a real run, and writes nothing.
  diff_mode:
    support: full
    details:
      - The diff shows the join scope and the Selected list before and after, with user principal names and group
        names instead of ids; an id whose object was deleted is shown as C(<id> (deleted)).
  idempotent:
    support: full
"""

EXAMPLES = r"""
- name: Let a new technician join devices
  entra.autopilot.entra_device_join_member:
    users:
      - tech.jane@contoso.com

- name: Let a guest from a partner company join devices
  entra.autopilot.entra_device_join_member:
    users:
      - "jo_fabrikam.com#EXT#@contoso.onmicrosoft.com"

- name: Let every member of the Autopilot enrollers group join devices
  entra.autopilot.entra_device_join_member:
    groups:
      - Autopilot Device Enrollers

- name: Remove the stale id of a deleted user from the list
  entra.autopilot.entra_device_join_member:
    users:
      - 5b0c6e2a-1f4d-4c2e-9d5a-6f7e8a9b0c1d
    state: absent

- name: Onboard the primary user of every device in the inventory (one task per host, run on the controller)
  entra.autopilot.entra_device_join_member:
    users:
      - "{{ primary_user_upn }}"
  delegate_to: localhost

- name: Offboard leavers, with the connection set once for every module of the collection
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/entra.autopilot.entra:
      tenant_id: "{{ entra_tenant_id }}"
      client_id: "{{ entra_client_id }}"
      client_secret: "{{ entra_client_secret }}"
  tasks:
    - name: Remove the leavers from the list of who may join devices
      entra.autopilot.entra_device_join_member:
        users: "{{ leavers }}"
        state: absent
"""

RETURN = r"""
added:
  description: The entries this task added (or would add in check mode).
  returned: success
  type: list
  elements: dict
  contains:
    id:
      description: Object id.
      type: str
      sample: 3c8ef067-8b96-44de-b2ae-557dfa0f97a0
    type:
      description: V(user) or V(group).
      type: str
      sample: user
    name:
      description: userPrincipalName of a user, display name of a group.
      type: str
      sample: tech.jane@contoso.com
removed:
  description:
    - The entries this task removed (or would remove in check mode).
  returned: success
  type: list
  elements: dict
  contains:
    id:
      description: Object id.
      type: str
      sample: 5b0c6e2a-1f4d-4c2e-9d5a-6f7e8a9b0c1d
    type:
      description: V(user) or V(group).
      type: str
      sample: user
    name:
      description: userPrincipalName of a user, display name of a group; null for a deleted object.
      type: str
      sample: null
config:
  description:
    - The policy after the change (as it would be, in check mode) in the option names of
      M(entra.autopilot.entra_device_join_policy), with object ids, the same shape as the C(config) of
      M(entra.autopilot.entra_device_join_policy_info).
  returned: success
  type: dict
  sample:
    allowed_to_join: selected
    users: [3c8ef067-8b96-44de-b2ae-557dfa0f97a0]
    groups: [a1b2c3d4-0000-4000-8000-000000000001]
    user_device_quota: 50
    require_mfa: false
    local_admins:
      global_admins: true
      registering_users: all
      users: []
      groups: []
    laps_enabled: true
policy:
  description: The raw Graph device registration policy after the change (as it would be, in check mode).
  returned: success
  type: dict
  sample:
    id: deviceRegistrationPolicy
    userDeviceQuota: 50
    multiFactorAuthConfiguration: notRequired
    azureADJoin:
      isAdminConfigurable: true
      allowedToJoin:
        "@odata.type": "#microsoft.graph.enumeratedDeviceRegistrationMembership"
        users: [3c8ef067-8b96-44de-b2ae-557dfa0f97a0]
        groups: []
diff:
  description:
    - The Selected list before and after, with userPrincipalNames and group names instead of ids
      (an id whose object was deleted is shown as C(<id> (deleted))).
  returned: when diff mode is on
  type: dict
  contains:
    before:
      description: The join scope and list before the task.
      type: dict
    after:
      description: The join scope and list after the task.
      type: dict
  sample:
    before:
      allowed_to_join: selected
      users: [anna@contoso.com]
      groups: []
    after:
      allowed_to_join: selected
      users: [anna@contoso.com, tech.jane@contoso.com]
      groups: []
"""

from dataclasses import replace

from ansible_collections.entra.autopilot.plugins.module_utils._lock import tenant_lock
from ansible_collections.entra.autopilot.plugins.module_utils._member_change import (
    Decision,
    apply_member_change,
    check_entries,
    decide,
    resolve_change,
)
from ansible_collections.entra.autopilot.plugins.module_utils._module import EntraModule
from ansible_collections.entra.autopilot.plugins.module_utils._policy import JoinPolicy, parse_policy, render_put_body, to_config, to_readable
from ansible_collections.entra.autopilot.plugins.module_utils._policy_store import PolicyStore
from ansible_collections.entra.autopilot.plugins.module_utils._principals import PrincipalResolver, group_warnings

DIFF_KEYS = ('allowed_to_join', 'users', 'groups')


def entries_of(decision: Decision, kind: str, names: dict) -> list[dict]:
    """``added`` or ``removed`` as [{id, type, name}]; name is None for a deleted object."""
    result = []
    for member_type, ids in (('user', getattr(decision, kind + '_users')), ('group', getattr(decision, kind + '_groups'))):
        for object_id in sorted(ids):
            principal = names.get(object_id)
            result.append({'id': object_id, 'type': member_type, 'name': principal.name if principal else None})
    return result


def change_members(module: EntraModule) -> dict:
    users, groups, state = module.params['users'] or [], module.params['groups'] or [], module.params['state']
    check_entries(users, groups)
    client = module.graph_client()
    store, resolver = PolicyStore(client), PrincipalResolver(client)
    raw, before = store.read()
    looked_up = before.allowed_to_join.users | before.allowed_to_join.groups
    # the current list's names are only looked up for the diff
    change, names, warnings = resolve_change(resolver, before, state, users, groups, names=module._diff)
    decision = decide(before.allowed_to_join, change)
    # named groups without user members let nobody join (the seed's note); one $batch counts them
    adding = [names[group_id] for group_id in sorted(decision.added_groups) if group_id in names]
    if adding:
        warnings += group_warnings(adding, resolver.group_user_counts(group.id for group in adding))

    after = replace(before, allowed_to_join=decision.membership)
    policy = raw
    if decision.changed and module.check_mode:
        policy = {**raw, **render_put_body(raw, after)}
    elif decision.changed:
        settings = module.auth_settings()
        applied = apply_member_change(store, change, lock=lambda: tenant_lock(settings.graph_endpoint, settings.tenant_id))
        # decided again on the policy read under the lock: other runs may have changed it since the first read
        before, decision, policy = applied.before, applied.decision, applied.raw
        after = parse_policy(policy)

    for warning in warnings + list(decision.warnings):
        module.warn(warning)
    result = {'changed': decision.changed, 'added': entries_of(decision, 'added', names),
              'removed': entries_of(decision, 'removed', names), 'config': to_config(after), 'policy': policy}
    if module._diff:
        result['diff'] = readable_diff(resolver, names, looked_up | change.users | change.groups, before, after)
    return result


def readable_diff(resolver: PrincipalResolver, names: dict, looked_up: frozenset[str], before: JoinPolicy, after: JoinPolicy) -> dict:
    """The join scope and lists before and after, with UPNs and group names (ids of deleted objects marked)."""
    listed: set[str] = set()
    for membership in (before.allowed_to_join, after.allowed_to_join):
        listed.update(membership.users | membership.groups)
    # ids that other runs added after the first read have not been looked up yet
    unnamed = listed - set(names) - looked_up
    if unnamed:
        names = {**names, **resolver.lookup_ids(unnamed)}
    return {side: {key: value for key, value in to_readable(policy, names).items() if key in DIFF_KEYS}
            for side, policy in (('before', before), ('after', after))}


def main() -> None:
    module = EntraModule(
        argument_spec=dict(
            users=dict(type='list', elements='str'),
            groups=dict(type='list', elements='str'),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
        ),
        required_one_of=[('users', 'groups')],
        supports_check_mode=True,
    )
    module.run(lambda: change_members(module))


if __name__ == '__main__':
    main()
