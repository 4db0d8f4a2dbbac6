# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A tenant's directory (users, groups, devices, deleted objects) and its device registration policy.

The state format (also the seed format) is documented in tests/emulator/README.md.
"""

from __future__ import annotations

import copy
import re
import uuid
from typing import Any

GUID = re.compile(r'^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$')

USER_DEFAULT = ('businessPhones', 'displayName', 'givenName', 'jobTitle', 'mail', 'mobilePhone', 'officeLocation',
                'preferredLanguage', 'surname', 'userPrincipalName', 'id')
USER_PROPERTIES = frozenset(USER_DEFAULT + (
    'accountEnabled', 'userType', 'mailNickname', 'createdDateTime', 'department', 'companyName', 'usageLocation',
    'employeeId', 'otherMails', 'proxyAddresses', 'externalUserState', 'creationType', 'onPremisesSyncEnabled',
    'deletedDateTime', 'city', 'country', 'employeeType',
))
GROUP_DEFAULT = ('id', 'deletedDateTime', 'classification', 'createdDateTime', 'description', 'displayName',
                 'expirationDateTime', 'groupTypes', 'isAssignableToRole', 'mail', 'mailEnabled', 'mailNickname',
                 'membershipRule', 'membershipRuleProcessingState', 'onPremisesSyncEnabled', 'preferredDataLocation',
                 'proxyAddresses', 'renewedDateTime', 'securityEnabled', 'securityIdentifier', 'visibility')
GROUP_PROPERTIES = frozenset(GROUP_DEFAULT + ('createdByAppId', 'theme', 'uniqueName'))
DEVICE_DEFAULT = ('id', 'deletedDateTime', 'accountEnabled', 'approximateLastSignInDateTime', 'deviceId', 'displayName',
                  'isCompliant', 'isManaged', 'manufacturer', 'model', 'operatingSystem', 'operatingSystemVersion',
                  'profileType', 'trustType')
DEVICE_PROPERTIES = frozenset(DEVICE_DEFAULT + ('enrollmentType', 'registrationDateTime'))

LIST_DEFAULTS = {'user': ('businessPhones',), 'group': ('groupTypes', 'proxyAddresses'), 'device': ()}
ODATA_TYPES = {'user': '#microsoft.graph.user', 'group': '#microsoft.graph.group', 'device': '#microsoft.graph.device'}

POLICY_READ_ONLY = ('id', 'displayName', 'description')
DEFAULT_POLICY: dict = {
    'id': 'deviceRegistrationPolicy',
    'displayName': 'Device Registration Policy',
    'description': 'Tenant-wide policy that manages initial provisioning controls using quota restrictions, additional authentication and '
                   'authorization checks',
    'userDeviceQuota': 50,
    'multiFactorAuthConfiguration': 'notRequired',
    'azureADRegistration': {
        'isAdminConfigurable': True,
        'allowedToRegister': {'@odata.type': '#microsoft.graph.allDeviceRegistrationMembership'},
    },
    'azureADJoin': {
        'isAdminConfigurable': True,
        'allowedToJoin': {'@odata.type': '#microsoft.graph.allDeviceRegistrationMembership'},
        'localAdmins': {
            'enableGlobalAdmins': True,
            'registeringUsers': {'@odata.type': '#microsoft.graph.allDeviceRegistrationMembership'},
        },
    },
    'localAdminPassword': {'isEnabled': False},
}

# Ids of generated users are stable: uuid5 of this namespace and the user principal name.
GENERATED_NAMESPACE = uuid.UUID('5b0f1c52-8a47-4f43-9a0e-3c1f6d9e2a10')


def generated_user_id(upn: str) -> str:
    """The object id a ``generated_users`` entry gives the user ``upn`` (so callers can list them before they exist)."""
    return str(uuid.uuid5(GENERATED_NAMESPACE, upn.lower()))


class StateError(ValueError):
    """A seed or state that cannot be loaded (the message says what is wrong)."""


def is_guid(value: Any) -> bool:
    return isinstance(value, str) and bool(GUID.match(value))


class Directory:
    """Directory objects of one tenant. Immutable after loading (only the policy changes, see Tenant)."""

    def __init__(self, state: dict) -> None:
        self.users: dict[str, dict] = {}
        self.groups: dict[str, dict] = {}
        self.devices: dict[str, dict] = {}
        self.deleted: dict[str, dict] = {}
        self.members: dict[str, list[str]] = {}
        self.users_by_upn: dict[str, dict] = {}
        seen: set[str] = set()

        def add(kind: str, obj: Any, table: dict[str, dict]) -> dict:
            if not isinstance(obj, dict) or not is_guid(obj.get('id')):
                raise StateError('every %s needs an "id" that is a GUID: %r' % (kind, obj))
            key = obj['id'].lower()
            if key in seen:
                raise StateError('object id %s is used twice' % obj['id'])
            seen.add(key)
            stored = copy.deepcopy(obj)
            for name in LIST_DEFAULTS.get(kind, ()):
                stored.setdefault(name, [])
            table[key] = stored
            return stored

        for user in list(state.get('users') or []) + _generated_users(state.get('generated_users') or []):
            stored = add('user', user, self.users)
            upn = stored.get('userPrincipalName')
            if not isinstance(upn, str) or not upn:
                raise StateError('user %s has no userPrincipalName' % stored['id'])
            if upn.casefold() in self.users_by_upn:
                raise StateError('userPrincipalName %s is used twice' % upn)
            self.users_by_upn[upn.casefold()] = stored
        for device in state.get('devices') or []:
            add('device', device, self.devices)
        for group in state.get('groups') or []:
            stored = add('group', group, self.groups)
            members = stored.pop('members', [])
            if not isinstance(members, list) or not all(is_guid(member) for member in members):
                raise StateError('group %s: "members" must be a list of object ids' % stored['id'])
            self.members[stored['id'].lower()] = list(members)
        for user in _generated_users(state.get('generated_users') or []):
            for group_id in user.get('_member_of', ()):
                if group_id.lower() not in self.members:
                    raise StateError('generated users: unknown group %s' % group_id)
                self.members[group_id.lower()].append(user['id'])
        for obj in state.get('deleted') or []:
            kind = str(obj.get('@odata.type', '#microsoft.graph.user')).rsplit('.', 1)[-1] if isinstance(obj, dict) else 'user'
            add(kind, obj, self.deleted)
        for users in self.users.values():
            users.pop('_member_of', None)
        self._generated = copy.deepcopy(state.get('generated_users') or [])

    def kind_of(self, object_id: str) -> str | None:
        key = object_id.lower()
        if key in self.users:
            return 'user'
        if key in self.groups:
            return 'group'
        if key in self.devices:
            return 'device'
        return None

    def get(self, object_id: str) -> tuple[str, dict] | None:
        key = object_id.lower()
        for kind, table in (('user', self.users), ('group', self.groups), ('device', self.devices)):
            if key in table:
                return kind, table[key]
        return None

    def user_by_upn(self, upn: str) -> dict | None:
        return self.users_by_upn.get(upn.casefold())

    def group_members(self, group_id: str) -> list[tuple[str, dict]]:
        """Live members of a group (deleted or unknown member ids are skipped)."""
        result = []
        for member_id in self.members.get(group_id.lower(), []):
            found = self.get(member_id)
            if found:
                result.append(found)
        return result

    def transitive_groups(self, object_id: str) -> set[str]:
        """Lower-case ids of the live groups ``object_id`` is a member of, directly or through nested groups.

        This is what Graph's checkMemberGroups evaluates; a cycle of groups (allowed in a seed) ends the walk.
        """
        parents: dict[str, set[str]] = {}
        for group_id, members in self.members.items():
            for member in members:
                parents.setdefault(member.lower(), set()).add(group_id)
        found: set[str] = set()
        pending = [object_id.lower()]
        while pending:
            for group_id in parents.get(pending.pop(), ()):
                if group_id not in found and group_id in self.groups:
                    found.add(group_id)
                    pending.append(group_id)
        return found

    def to_state(self) -> dict:
        users = [copy.deepcopy(user) for user in self.users.values() if not user.get('_generated')]
        groups = []
        for key, group in self.groups.items():
            stored = copy.deepcopy(group)
            generated_ids = {user['id'] for user in self.users.values() if user.get('_generated')}
            stored['members'] = [member for member in self.members.get(key, []) if member not in generated_ids]
            groups.append(stored)
        state: dict = {'users': users, 'groups': groups, 'devices': [copy.deepcopy(d) for d in self.devices.values()],
                       'deleted': [copy.deepcopy(d) for d in self.deleted.values()]}
        for user in state['users']:
            user.pop('_generated', None)
        if self._generated:
            state['generated_users'] = copy.deepcopy(self._generated)
        return state


def _generated_users(specs: list) -> list[dict]:
    """Expand ``generated_users`` entries (many similar users, e.g. for paging and 1000-id lookups)."""
    users: list[dict] = []
    for spec in specs:
        if not isinstance(spec, dict) or not isinstance(spec.get('count'), int):
            raise StateError('generated_users entries need "count", "userPrincipalName" and "displayName" patterns: %r' % (spec,))
        for number in range(1, spec['count'] + 1):
            upn = spec['userPrincipalName'].format(n=number)
            users.append({
                'id': generated_user_id(upn),
                'userPrincipalName': upn,
                'displayName': spec['displayName'].format(n=number),
                'mail': upn if spec.get('mail', True) else None,
                'userType': 'Member',
                'accountEnabled': True,
                '_generated': True,
                '_member_of': list(spec.get('member_of', [])),
            })
    return users
