#!/usr/bin/python
# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: entra_device_join_policy
short_description: Manage who may join devices to Microsoft Entra, and the rest of the device registration policy
version_added: 0.1.0
description:
  - Sets C(Users may join devices to Microsoft Entra) to B(All), B(Selected) (with the complete list of users and
    groups) or B(None), the maximum number of devices per user, the multifactor authentication requirement, the local
    administrators of joined devices and LAPS, in the tenant-wide device registration policy
    (Microsoft Graph C(policies/deviceRegistrationPolicy)). This is step 2 of the Windows Autopilot user-driven
    Microsoft Entra join guide, as code.
  - Every option is optional. An option left out leaves that setting exactly as it is. Graph replaces the whole policy
    on each write, so the module reads it first and writes it back with only the requested settings changed. The
    settings of Microsoft Entra registered devices (C(azureADRegistration)) and C(isAdminConfigurable) are never changed.
  - O(users) and O(groups) are complete lists, compared by object id as sets, so order, duplicates and the case of
    user principal names never cause a change. To add or remove single entries and keep the rest, use
    M(entra.autopilot.entra_device_join_member).
  - Every entry is resolved before anything is written. A name that matches nothing, or a group name that matches
    several groups, fails the task and names each such entry (with the candidates' ids).
  - After a write the module checks that the requested settings are in place and fails, saying what differs, if not.
author:
  - entra.autopilot contributors (@entra-autopilot)
options:
  allowed_to_join:
    description:
      - C(Users may join devices to Microsoft Entra).
      - V(all) lets every user join devices; V(none) lets nobody join; V(selected) lets the users in O(users) and
        the members of O(groups) join.
      - Going from V(selected) to V(all) or V(none) drops the list; Graph keeps no list for those scopes.
      - V(selected) without O(users) and O(groups) keeps the current list, or starts an empty one (nobody can join,
        with a warning).
    type: str
    choices: [all, selected, none]
  users:
    description:
      - The complete list of users who may join devices, each as an object id or a userPrincipalName (a guest as
        its C(#EXT#) UPN). Users not in it are removed from the list.
      - Only applies to O(allowed_to_join=selected). Without O(allowed_to_join) it replaces the list of a tenant that
        is already B(Selected), and is an error otherwise.
      - An id already in the list whose user was deleted is kept when listed and removed when not.
      - An empty list is accepted with any scope.
    type: list
    elements: str
  groups:
    description:
      - The complete list of groups whose members may join devices, each as an object id or an exact display name.
      - The same rules as O(users) apply.
      - Only users in a group can join. A group added without user members (for example a group of devices) gets a
        warning.
    type: list
    elements: str
  user_device_quota:
    description:
      - C(Maximum number of devices per user), from V(0) to V(100). It counts joined and registered devices.
      - The Entra admin center stores values above 100 as 100, so they are rejected rather than left to drift.
        V(0) means nobody can join or register another device (a warning says so).
      - A value outside the range that the tenant already holds is accepted as is and left untouched.
    type: int
  require_mfa:
    description:
      - C(Require multifactor authentication to register or join devices with Microsoft Entra).
      - Microsoft recommends the Conditional Access user action C(Register or join devices) instead; such a Conditional
        Access policy is only enforced while this setting is V(false). Turning it on warns about that.
    type: bool
  local_admins:
    description:
      - Who becomes local administrator of the devices users join (C(azureADJoin.localAdmins)).
      - Each sub-option left out keeps its current value.
    type: dict
    suboptions:
      global_admins:
        description:
          - Whether Global Administrators are local administrators on every Microsoft Entra joined device.
            Only affects devices joined from then on.
        type: bool
      registering_users:
        description:
          - Which users become local administrators of the devices they join. V(all) makes every user local
            administrator; V(none) makes nobody; V(selected) makes the users in O(local_admins.users) and the members
            of O(local_admins.groups) local administrators.
        type: str
        choices: [all, selected, none]
      users:
        description:
          - The complete list of users for O(local_admins.registering_users=selected), as object ids or
            userPrincipalNames. The same rules as O(users) apply.
        type: list
        elements: str
      groups:
        description:
          - The complete list of groups for O(local_admins.registering_users=selected), as object ids or exact display
            names. The same rules as O(groups) apply.
        type: list
        elements: str
  laps_enabled:
    description:
      - Whether Windows Local Administrator Password Solution (LAPS) is enabled for Microsoft Entra joined devices.
    type: bool
notes:
  - Graph offers no ETag for this policy. Run changes of it from one place at a time, or use
    M(entra.autopilot.entra_device_join_member), which serialises its writes per tenant, for single entries.
  - Required Graph permissions - Policy.ReadWrite.DeviceConfiguration (application), or the Cloud Device Administrator
    role for delegated tokens, plus User.Read.All and Group.Read.All to resolve names.
seealso:
  - module: entra.autopilot.entra_device_join_policy_info
  - module: entra.autopilot.entra_device_join_member
  - name: Windows Autopilot user-driven Microsoft Entra join - allow users to join devices
    description: The step of the Autopilot guide this module automates.
    link: https://learn.microsoft.com/autopilot/tutorial/user-driven/azure-ad-join-allow-users-to-join
  - name: Manage device identities in the Microsoft Entra admin center
    description: What each device setting does.
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
      - The diff shows the policy before and after in the option names, with user principal names and group names
        instead of ids; an id whose object was deleted is shown as C(<id> (deleted)).
  idempotent:
    support: full
"""

EXAMPLES = r"""
- name: Let only the Autopilot enrollers group and one technician join devices
  entra.autopilot.entra_device_join_policy:
    allowed_to_join: selected
    groups:
      - Autopilot Device Enrollers
    users:
      - tech.jane@contoso.com

- name: Let every user join devices
  entra.autopilot.entra_device_join_policy:
    allowed_to_join: all

- name: Lock joining during an incident
  entra.autopilot.entra_device_join_policy:
    allowed_to_join: none

- name: Allow 20 devices per user and change nothing else
  entra.autopilot.entra_device_join_policy:
    user_device_quota: 20

- name: Make only the device administrators group local administrators, and turn on LAPS
  entra.autopilot.entra_device_join_policy:
    local_admins:
      global_admins: true
      registering_users: selected
      groups:
        - Device Administrators
    laps_enabled: true

- name: Save the settings before a change window
  entra.autopilot.entra_device_join_policy_info:
  register: saved

- name: Put the saved settings back afterwards (a no-op when nothing changed meanwhile)
  entra.autopilot.entra_device_join_policy:
    allowed_to_join: "{{ saved.config.allowed_to_join }}"
    users: "{{ saved.config.users }}"
    groups: "{{ saved.config.groups }}"
    user_device_quota: "{{ saved.config.user_device_quota }}"
    require_mfa: "{{ saved.config.require_mfa }}"
    local_admins: "{{ saved.config.local_admins }}"
    laps_enabled: "{{ saved.config.laps_enabled }}"

- name: Audit and enforce the join policy with the connection set once (run with --check --diff to audit only)
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/entra.autopilot.entra:
      tenant_id: "{{ entra_tenant_id }}"
      client_id: "{{ entra_client_id }}"
      client_secret: "{{ entra_client_secret }}"
  tasks:
    - name: Only the Autopilot enrollers may join, at most 10 devices each
      entra.autopilot.entra_device_join_policy:
        allowed_to_join: selected
        users: []
        groups:
          - Autopilot Device Enrollers
        user_device_quota: 10
"""

RETURN = r"""
config:
  description:
    - The policy after the change (as it would be, in check mode) in the option names of this module, with users and
      groups as object ids; the same shape as the C(config) of M(entra.autopilot.entra_device_join_policy_info).
  returned: success
  type: dict
  sample:
    allowed_to_join: selected
    users: [3c8ef067-8b96-44de-b2ae-557dfa0f97a0]
    groups: [9f1d1c7e-2b2a-4d53-8e55-0c1f7b1e2a10]
    user_device_quota: 20
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
    displayName: Device Registration Policy
    userDeviceQuota: 20
    multiFactorAuthConfiguration: notRequired
    azureADRegistration:
      isAdminConfigurable: false
      allowedToRegister:
        "@odata.type": "#microsoft.graph.allDeviceRegistrationMembership"
    azureADJoin:
      isAdminConfigurable: true
      allowedToJoin:
        "@odata.type": "#microsoft.graph.enumeratedDeviceRegistrationMembership"
        users: [3c8ef067-8b96-44de-b2ae-557dfa0f97a0]
        groups: [9f1d1c7e-2b2a-4d53-8e55-0c1f7b1e2a10]
      localAdmins:
        enableGlobalAdmins: true
        registeringUsers:
          "@odata.type": "#microsoft.graph.allDeviceRegistrationMembership"
    localAdminPassword:
      isEnabled: true
diff:
  description:
    - The policy before and after, in the option names of this module, with user principal names and group names
      instead of ids; an id whose object was deleted is shown as C(<id> (deleted)).
  returned: when diff mode is on
  type: dict
  sample:
    before:
      allowed_to_join: selected
      users: [adele.vance@contoso.com, 5b0c6e2a-1f4d-4c2e-9d5a-6f7e8a9b0c1d (deleted)]
      groups: [Autopilot Device Enrollers]
      user_device_quota: 50
    after:
      allowed_to_join: selected
      users: [adele.vance@contoso.com]
      groups: [Autopilot Device Enrollers]
      user_device_quota: 20
"""

from ansible_collections.entra.autopilot.plugins.module_utils._module import EntraModule
from ansible_collections.entra.autopilot.plugins.module_utils._policy import render_put_body, to_config, to_readable
from ansible_collections.entra.autopilot.plugins.module_utils._policy_options import (
    PolicyOptions,
    check_join_configurable,
    entry_ids,
    groups_added,
    listed_ids,
    policy_ids,
)
from ansible_collections.entra.autopilot.plugins.module_utils._policy_store import PolicyStore
from ansible_collections.entra.autopilot.plugins.module_utils._principals import PrincipalResolver, group_warnings

SCOPE_CHOICES = ['all', 'selected', 'none']


def argument_spec() -> dict:
    return dict(
        allowed_to_join=dict(type='str', choices=SCOPE_CHOICES),
        users=dict(type='list', elements='str'),
        groups=dict(type='list', elements='str'),
        user_device_quota=dict(type='int'),
        require_mfa=dict(type='bool'),
        local_admins=dict(type='dict', options=dict(
            global_admins=dict(type='bool'),
            registering_users=dict(type='str', choices=SCOPE_CHOICES),
            users=dict(type='list', elements='str'),
            groups=dict(type='list', elements='str'),
        )),
        laps_enabled=dict(type='bool'),
    )


def apply_policy(module: EntraModule) -> dict:
    options = PolicyOptions.from_params(module.params)
    client = module.graph_client()
    store = PolicyStore(client)
    raw, current = store.read()
    options.check(current)

    resolver = PrincipalResolver(client)
    users, groups = options.entries()
    user_ids: dict[str, str] = {}
    group_ids: dict[str, str] = {}
    names = None  # existing principals by id, for warnings and the diff
    if users or groups:
        # Ids already in the policy need not exist (a complete list may keep the id of a deleted object), and they
        # need no lookup at all unless the diff shows their names: only new entries are checked.
        known = policy_ids(current) if module._diff else set()
        resolved = resolver.resolve(users, groups, known_ids=known, listed=listed_ids(current))
        user_ids, group_ids, names = entry_ids(users, resolved.users), entry_ids(groups, resolved.groups), resolved.principals
    desired = options.desired(current, user_ids, group_ids)
    check_join_configurable(raw, current, desired)

    for warning in options.warnings(current, desired):
        module.warn(warning)
    added_ids = sorted(groups_added(current, desired))
    # a group the policy holds in its other list was taken without a lookup: name it for the warning
    unnamed = [group_id for group_id in added_ids if group_id not in (names or {}) and group_id in policy_ids(current)]
    if unnamed and not module._diff:
        names = {**(names or {}), **resolver.lookup_ids(unnamed)}
    # only groups that exist can be counted (a deleted id kept from the other list has nothing to count)
    added = [names[group_id] for group_id in added_ids if group_id in (names or {})]
    if added:
        counts = resolver.group_user_counts(group.id for group in added)
        for warning in group_warnings(added, counts):
            module.warn(warning)

    changed = desired != current
    policy = raw
    if changed and module.check_mode:
        policy = {**raw, **render_put_body(raw, desired)}
    elif changed:
        policy = store.write(raw, desired, options.fields())

    result = {'changed': changed, 'policy': policy, 'config': to_config(desired)}
    if module._diff:
        if names is None:
            known = policy_ids(current)
            names = resolver.lookup_ids(known) if known else {}
        result['diff'] = {'before': to_readable(current, names), 'after': to_readable(desired, names)}
    return result


def main() -> None:
    module = EntraModule(argument_spec=argument_spec(), supports_check_mode=True)
    module.run(lambda: apply_policy(module))


if __name__ == '__main__':
    main()
