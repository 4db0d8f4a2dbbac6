#!/usr/bin/python
# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: entra_device_join_policy_info
short_description: Read who may join devices to Microsoft Entra, and the rest of the device registration policy
version_added: 0.1.0
description:
  - Reads the Microsoft Entra device registration policy (Microsoft Graph C(policies/deviceRegistrationPolicy)) -
    the setting C(Users may join devices to Microsoft Entra) (B(All), B(Selected) or B(None)), the maximum number of
    devices per user, the multifactor authentication requirement, the local administrators of joined devices and LAPS.
  - Returns the policy three ways. RV(policy) is the raw Graph object. RV(config) uses the option names of
    M(entra.autopilot.entra_device_join_policy), so it can be saved and fed back in unchanged. RV(members) resolves
    the B(Selected) list for people, with user principal names, group names, whether each group holds users,
    and the ids whose objects no longer exist.
  - A read costs one token request, one read of the policy, one C(directoryObjects/getByIds) call for the members of
    the B(Selected) list and one C($batch) call for the user counts of its groups; nothing else.
  - With O(check_users) it also tells, for each of those users, whether they may join devices and why - the scope is
    B(All), they are listed directly, or they are members of a listed group (nested groups count, as Entra evaluates
    them) - which takes one more C(getByIds) call and C($batch) calls (20 requests each) for the user principal names
    and the group memberships (C(checkMemberGroups)).
author:
  - entra.autopilot contributors (@entra-autopilot)
options:
  check_users:
    description:
      - Users to check, each as a userPrincipalName or an object id. RV(coverage) says for each whether it may join
        devices under the policy (or under O(check_against)) and why.
      - A user that does not exist is reported as not covered; a group given here fails the task.
      - The module only reports; it never fails because a user is not covered (the C(entra.autopilot.device_join)
        role does, with its O(entra.autopilot.device_join#role:main:device_join_required_members)).
    type: list
    elements: str
  check_against:
    description:
      - Check O(check_users) against this join scope instead of the tenant's, for example the
        RV(entra.autopilot.entra_device_join_policy#module:config) a check-mode run of
        M(entra.autopilot.entra_device_join_policy) returned (what the policy would be).
      - Requires O(check_users).
    type: dict
    suboptions:
      allowed_to_join:
        description: The join scope.
        type: str
        choices: [all, selected, none]
        required: true
      users:
        description: Object ids of the selected users.
        type: list
        elements: str
        default: []
      groups:
        description: Object ids of the selected groups.
        type: list
        elements: str
        default: []
notes:
  - Required Graph permissions - Policy.Read.DeviceConfiguration (application or delegated), plus User.Read.All and
    Group.Read.All (or Directory.Read.All) to resolve the members. O(check_users) needs User.Read.All and
    GroupMember.Read.All (or Directory.Read.All) for C(checkMemberGroups).
seealso:
  - module: entra.autopilot.entra_device_join_policy
  - module: entra.autopilot.entra_device_join_member
  - name: Manage device identities in the Microsoft Entra admin center
    description: What "Users may join devices to Microsoft Entra" and the other device settings do.
    link: https://learn.microsoft.com/entra/identity/devices/manage-device-identities
extends_documentation_fragment:
  - entra.autopilot.connection
  - entra.autopilot.attributes
  - entra.autopilot.attributes.action_group
  - entra.autopilot.attributes.info_module
"""

EXAMPLES = r"""
- name: Read who may join devices
  entra.autopilot.entra_device_join_policy_info:
    tenant_id: "{{ entra_tenant_id }}"
    client_id: "{{ entra_client_id }}"
    client_secret: "{{ entra_client_secret }}"
  register: join_policy

- name: Show who may join devices, by name
  ansible.builtin.debug:
    msg:
      - "Scope: {{ join_policy.config.allowed_to_join }}"
      - "Users: {{ join_policy.members.users | map(attribute='user_principal_name') | list }}"
      - "Groups: {{ join_policy.members.groups | map(attribute='display_name') | list }}"
      - "Deleted objects still listed: {{ join_policy.members.unresolved }}"

- name: Fail when a selected group holds no users (only users in a group can join devices)
  ansible.builtin.assert:
    that: join_policy.members.groups | rejectattr('contains_users') | list | length == 0
    fail_msg: "Groups without users: {{ join_policy.members.groups | rejectattr('contains_users') | map(attribute='display_name') | list }}"

- name: Check that the technicians who will enrol devices may join them (and why)
  entra.autopilot.entra_device_join_policy_info:
    check_users:
      - tech.jane@contoso.com
      - 3c8ef067-8b96-44de-b2ae-557dfa0f97a0
  register: join_policy

- name: Fail naming everyone who cannot join
  ansible.builtin.assert:
    that: join_policy.coverage.uncovered | length == 0
    fail_msg: "{{ join_policy.coverage.users | rejectattr('covered') | map(attribute='user') | zip(join_policy.coverage.users
      | rejectattr('covered') | map(attribute='reason')) | map('join', ': ') | list }}"

- name: Read with the connection set once for every module of the collection (for example from AWX's Azure credential)
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/entra.autopilot.entra:
      auth_method: client_certificate
      client_certificate_path: /etc/entra/automation.pem
  tasks:
    - name: Read the device registration policy
      entra.autopilot.entra_device_join_policy_info:
      register: join_policy
"""

RETURN = r"""
policy:
  description: The device registration policy as Graph returns it.
  returned: success
  type: dict
  sample:
    id: deviceRegistrationPolicy
    displayName: Device Registration Policy
    userDeviceQuota: 50
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
config:
  description:
    - The policy in the option names of M(entra.autopilot.entra_device_join_policy), with users and groups as
      object ids (lower case, sorted). Feeding it back to that module changes nothing.
    - O(entra.autopilot.entra_device_join_policy#module:local_admins) holds nulls when the tenant has no local
      administrator settings.
  returned: success
  type: dict
  contains:
    allowed_to_join:
      description: V(all), V(selected) or V(none).
      type: str
      sample: selected
    users:
      description: Object ids of the selected users; empty unless RV(config.allowed_to_join=selected).
      type: list
      elements: str
      sample: [3c8ef067-8b96-44de-b2ae-557dfa0f97a0]
    groups:
      description: Object ids of the selected groups; empty unless RV(config.allowed_to_join=selected).
      type: list
      elements: str
      sample: [9f1d1c7e-2b2a-4d53-8e55-0c1f7b1e2a10]
    user_device_quota:
      description: Maximum number of devices per user.
      type: int
      sample: 50
    require_mfa:
      description: Whether joining or registering a device requires multifactor authentication.
      type: bool
      sample: false
    local_admins:
      description: Who becomes local administrator of the devices users join.
      type: dict
      sample:
        global_admins: true
        registering_users: selected
        users: [3c8ef067-8b96-44de-b2ae-557dfa0f97a0]
        groups: []
    laps_enabled:
      description: Whether Windows LAPS is enabled for joined devices.
      type: bool
      sample: true
members:
  description: The B(Selected) list resolved for people; empty lists unless RV(config.allowed_to_join=selected).
  returned: success
  type: dict
  contains:
    users:
      description: The selected users that exist.
      type: list
      elements: dict
      sample:
        - id: 3c8ef067-8b96-44de-b2ae-557dfa0f97a0
          user_principal_name: adele.vance@contoso.com
          display_name: Adele Vance
    groups:
      description:
        - The selected groups that exist.
        - C(contains_users) is V(false) for a group without user members, such as a group of devices. Only users in a
          group can join devices. It is null when the count could not be read.
      type: list
      elements: dict
      sample:
        - id: 9f1d1c7e-2b2a-4d53-8e55-0c1f7b1e2a10
          display_name: Autopilot Device Enrollers
          contains_users: true
    unresolved:
      description: Ids in the B(Selected) list whose objects no longer exist (deleted users or groups).
      type: list
      elements: str
      sample: [5b0c6e2a-1f4d-4c2e-9d5a-6f7e8a9b0c1d]
coverage:
  description: Whether each of O(check_users) may join devices, and why.
  returned: when O(check_users) is set
  type: dict
  contains:
    allowed_to_join:
      description: The join scope the users were checked against.
      type: str
      sample: selected
    evaluated:
      description: V(tenant) (the policy just read) or V(check_against).
      type: str
      sample: tenant
    users:
      description: One entry per checked user, in the order given.
      type: list
      elements: dict
      contains:
        user:
          description: The entry as given.
          type: str
        id:
          description: The user's object id; null when no user matches.
          type: str
        user_principal_name:
          description: The user's userPrincipalName; null when no user matches.
          type: str
        display_name:
          description: The user's display name.
          type: str
        covered:
          description: Whether the user may join devices to Microsoft Entra.
          type: bool
        via:
          description: V(all) (the scope is All), V(listed) (in the Selected list), V(group) (member of a listed group), or null.
          type: str
        groups:
          description: The listed groups the user is a member of (directly or through nested groups), with C(id) and C(display_name).
          type: list
          elements: dict
        reason:
          description: One sentence saying why the user may or may not join.
          type: str
      sample:
        - user: tech.jane@contoso.com
          id: 3c8ef067-8b96-44de-b2ae-557dfa0f97a0
          user_principal_name: tech.jane@contoso.com
          display_name: Jane Tech
          covered: true
          via: group
          groups: [{id: 9f1d1c7e-2b2a-4d53-8e55-0c1f7b1e2a10, display_name: Autopilot Device Enrollers}]
          reason: "may join: member of the selected group Autopilot Device Enrollers."
    uncovered:
      description: The entries of O(check_users) that may not join devices.
      type: list
      elements: str
      sample: [new.hire@contoso.com]
"""

from ansible_collections.entra.autopilot.plugins.module_utils._coverage import check_users, coverage_result, membership_from_option
from ansible_collections.entra.autopilot.plugins.module_utils._module import EntraModule
from ansible_collections.entra.autopilot.plugins.module_utils._policy import to_config
from ansible_collections.entra.autopilot.plugins.module_utils._policy_store import PolicyStore
from ansible_collections.entra.autopilot.plugins.module_utils._principals import PrincipalResolver


def read_policy(module: EntraModule) -> dict:
    against = module.params['check_against']
    # checked before anything is read: bad input never costs a call
    against_membership = membership_from_option(against) if against else None
    client = module.graph_client()
    raw, policy = PolicyStore(client).read()
    selected = policy.allowed_to_join
    resolver = PrincipalResolver(client)
    found = resolver.lookup_ids(selected.users | selected.groups) if selected.users or selected.groups else {}
    groups = sorted(group_id for group_id in selected.groups if group_id in found)
    user_counts = resolver.group_user_counts(groups) if groups else {}
    members = {
        'users': [{'id': user_id, 'user_principal_name': found[user_id].name, 'display_name': found[user_id].display_name}
                  for user_id in sorted(selected.users) if user_id in found],
        'groups': [{'id': group_id, 'display_name': found[group_id].name,
                    'contains_users': user_counts[group_id] > 0 if group_id in user_counts else None}
                   for group_id in groups],
        'unresolved': sorted(object_id for object_id in selected.users | selected.groups if object_id not in found),
    }
    result = {'changed': False, 'policy': raw, 'config': to_config(policy), 'members': members}
    if module.params['check_users'] is not None:
        membership = against_membership or selected
        checked = check_users(resolver, membership, module.params['check_users'], names=found)
        result['coverage'] = coverage_result(membership, 'check_against' if against_membership else 'tenant', checked)
    return result


def main() -> None:
    module = EntraModule(
        argument_spec=dict(
            check_users=dict(type='list', elements='str'),
            check_against=dict(type='dict', options=dict(
                allowed_to_join=dict(type='str', choices=['all', 'selected', 'none'], required=True),
                users=dict(type='list', elements='str', default=[]),
                groups=dict(type='list', elements='str', default=[]),
            )),
        ),
        required_by={'check_against': 'check_users'},
        supports_check_mode=True,
    )
    module.run(lambda: read_policy(module))


if __name__ == '__main__':
    main()
