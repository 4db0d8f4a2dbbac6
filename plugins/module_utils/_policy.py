# Copyright (c) entra.autopilot contributors
# Simplified BSD License (see LICENSES/BSD-2-Clause.txt or https://opensource.org/licenses/BSD-2-Clause)
# SPDX-License-Identifier: BSD-2-Clause

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the entra.autopilot collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.

"""The device registration policy as a normalized model, and the full PUT body rendered from it.

``parse_policy`` reads the raw GET body (``/policies/deviceRegistrationPolicy``) into a ``JoinPolicy``; it never
guesses: a missing field or an unknown membership type is a ``PolicyFormatError`` naming the JSON path.
``render_put_body`` turns the raw policy plus a (changed) ``JoinPolicy`` into the body the PUT needs: all five
updatable properties, every part that did not change exactly as read, and nothing read-only.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ansible_collections.entra.autopilot.plugins.module_utils._errors import EntraError
from ansible_collections.entra.autopilot.plugins.module_utils._principals import is_object_id

SCOPES = ('all', 'selected', 'none')
SCOPE_ODATA_TYPES = {
    'all': '#microsoft.graph.allDeviceRegistrationMembership',
    'selected': '#microsoft.graph.enumeratedDeviceRegistrationMembership',
    'none': '#microsoft.graph.noDeviceRegistrationMembership',
}
# '#Microsoft.graph.…' appears in Microsoft's own blog examples, and OData allows the type without '#'.
_SCOPES_BY_TYPE = {odata_type.lstrip('#').lower(): scope for scope, odata_type in SCOPE_ODATA_TYPES.items()}

# The properties a PUT must carry, all of them (Graph resets or rejects a missing one).
UPDATABLE_PROPERTIES = ('userDeviceQuota', 'multiFactorAuthConfiguration', 'azureADRegistration', 'azureADJoin',
                        'localAdminPassword')

MFA_VALUES = {'required': True, 'notrequired': False, '1': True, '0': False}

# Keys of the retired (pre-September-2023) schema inside azureADJoin.
_LEGACY_JOIN_KEYS = ('appliesTo', 'allowedUsers', 'allowedGroups')

# The JoinPolicy fields that ``differences`` compares; 'users' and 'groups' are the join lists alone
# (the option names of the config).
FIELDS = ('allowed_to_join', 'user_device_quota', 'require_mfa', 'local_admins_global', 'local_admins_registering',
          'laps_enabled')
_FIELD_ALIASES = ('users', 'groups')


class PolicyFormatError(EntraError):
    """Graph returned a policy this collection cannot read without guessing."""

    def __init__(self, json_path: str, problem: str, advice: str | None = None) -> None:
        advice = advice or ('Nothing was changed. Check the policy in the Entra admin center (Devices > Device settings), '
                            'or try the other api_version (v1.0 or beta).')
        super().__init__('Cannot read the device registration policy returned by Graph: at %s, %s. %s'
                         % (json_path, problem, advice), json_path=json_path)
        self.json_path = json_path


def _seen(value: Any) -> str:
    """The value as it was in the JSON body, for messages."""
    return json.dumps(value, sort_keys=True)


def _object_at(parent: Mapping[str, Any], key: str, json_path: str, required: bool = True) -> dict | None:
    value = parent.get(key)
    if value is None:
        if required:
            raise PolicyFormatError(json_path, 'the object is missing (%s)' % ('no such key' if key not in parent else 'null'))
        return None
    if not isinstance(value, dict):
        raise PolicyFormatError(json_path, 'expected an object, found %s' % _seen(value))
    return value


def _bool_at(parent: Mapping[str, Any], key: str, json_path: str, required: bool = True) -> bool | None:
    value = parent.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, bool):
        raise PolicyFormatError(json_path, 'expected true or false, found %s' % ('nothing' if key not in parent else _seen(value)))
    return value


def _id_list(obj: Mapping[str, Any], key: str, json_path: str) -> frozenset[str]:
    value = obj.get(key)
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise PolicyFormatError(json_path, 'expected a list of object ids, found %s' % _seen(value))
    return frozenset(item.lower() for item in value)


@dataclass(frozen=True)
class Membership:
    """A deviceRegistrationMembership: who a setting applies to. Ids are lower-case object ids, as sets."""

    scope: str  # all | selected | none
    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ValueError('scope must be one of %s, not %r' % (', '.join(SCOPES), self.scope))
        users = frozenset(item.lower() for item in self.users)
        groups = frozenset(item.lower() for item in self.groups)
        if self.scope != 'selected' and (users or groups):
            raise ValueError('only a selected membership holds users and groups, not %r' % self.scope)
        object.__setattr__(self, 'users', users)
        object.__setattr__(self, 'groups', groups)

    @property
    def is_empty_selection(self) -> bool:
        """True for Selected without any user or group: nobody is allowed."""
        return self.scope == 'selected' and not self.users and not self.groups

    @classmethod
    def from_graph(cls, obj: Any, where: str) -> Membership:
        """Parse the membership object found at JSON path ``where``; an unknown or missing type is an error."""
        if not isinstance(obj, dict):
            raise PolicyFormatError(where, 'expected a membership object with an @odata.type, found %s'
                                    % ('nothing' if obj is None else _seen(obj)))
        odata_type = obj.get('@odata.type')
        type_path = where + '.@odata.type'
        if odata_type is None:
            raise PolicyFormatError(type_path, 'the membership type is missing (the object is %s); refusing to guess '
                                    'whether it means All, Selected or None' % _seen(obj))
        scope = _SCOPES_BY_TYPE.get(odata_type.lstrip('#').lower()) if isinstance(odata_type, str) else None
        if scope is None:
            raise PolicyFormatError(type_path, 'unknown membership type %s (expected one of %s); refusing to guess '
                                    'whether it means All, Selected or None'
                                    % (_seen(odata_type), ', '.join(SCOPE_ODATA_TYPES.values())))
        if scope != 'selected':
            return cls(scope)
        return cls(scope, _id_list(obj, 'users', where + '.users'), _id_list(obj, 'groups', where + '.groups'))

    def to_graph(self, original: dict | None = None) -> dict:
        """The Graph object for this membership.

        When ``original`` (the object as read) already means this membership, it is returned unchanged (a copy).
        When the scope stays Selected, the ids already in ``original`` keep their order and case, other keys of it
        are kept, and new ids are appended (sorted).
        """
        try:
            before = Membership.from_graph(original, 'membership') if original is not None else None
        except PolicyFormatError:
            before = None
        if before == self:
            return copy.deepcopy(original)
        kept = before.users | before.groups if before is not None else frozenset()
        names = sorted(item for item in (self.users | self.groups) - kept if not is_object_id(item))
        if names:
            # Graph stores whatever strings it is given; a UPN or group name would silently match nobody
            raise ValueError('only object ids can be added to a membership, not %s' % ', '.join(names))
        if self.scope != 'selected':
            return {'@odata.type': SCOPE_ODATA_TYPES[self.scope]}
        if before is None or before.scope != 'selected' or original is None:
            return {'@odata.type': SCOPE_ODATA_TYPES['selected'], 'users': sorted(self.users), 'groups': sorted(self.groups)}
        rendered = copy.deepcopy(original)
        rendered['users'] = _merge_ids(original.get('users'), self.users)
        rendered['groups'] = _merge_ids(original.get('groups'), self.groups)
        return rendered


def _merge_ids(original: list[str] | None, wanted: frozenset[str]) -> list[str]:
    """``original`` as read when it holds exactly ``wanted``; else its kept ids in their order, then the new ones."""
    original = original or []
    if {item.lower() for item in original} == wanted:
        return list(original)
    kept: dict[str, str] = {}
    for item in original:
        if item.lower() in wanted:
            kept.setdefault(item.lower(), item)
    return list(kept.values()) + sorted(wanted - set(kept))


@dataclass(frozen=True)
class JoinPolicy:
    """The parts of the device registration policy this collection reads and manages."""

    allowed_to_join: Membership
    user_device_quota: int
    require_mfa: bool
    local_admins_global: bool | None  # None when localAdmins (or its enableGlobalAdmins) is absent
    local_admins_registering: Membership | None  # None when localAdmins (or its registeringUsers) is absent
    laps_enabled: bool

    def __post_init__(self) -> None:
        if not isinstance(self.user_device_quota, int) or isinstance(self.user_device_quota, bool):
            raise ValueError('user_device_quota must be an int, not %r' % (self.user_device_quota,))


def _check_not_retired_schema(join: Mapping[str, Any]) -> None:
    if 'allowedToJoin' not in join and any(key in join for key in _LEGACY_JOIN_KEYS):
        raise PolicyFormatError(
            'azureADJoin', 'the tenant returned the retired pre-September-2023 schema (azureADJoin.appliesTo, '
            'allowedUsers and allowedGroups instead of azureADJoin.allowedToJoin)',
            'This collection only writes the current schema, so nothing was changed. Use api_version: v1.0 (the default) '
            'or api_version: beta against a current Microsoft Graph endpoint (check graph_endpoint).')


def _parse_mfa(raw: Mapping[str, Any]) -> bool:
    value = raw.get('multiFactorAuthConfiguration')
    # Before September 2023 beta returned "0"/"1" (and a plain 0/1 in some tools' samples).
    key = str(value).lower() if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    if key in MFA_VALUES:
        return MFA_VALUES[key]
    if key in ('unknownfuturevalue', '2'):
        raise PolicyFormatError('multiFactorAuthConfiguration', 'the value is %s, a setting newer than this API version '
                                'can name' % _seen(value),
                                'Nothing was changed. Try api_version: beta, or check "Require multifactor authentication '
                                'to register or join devices" in the Entra admin center.')
    raise PolicyFormatError('multiFactorAuthConfiguration', 'expected "required" or "notRequired", found %s'
                            % ('nothing' if 'multiFactorAuthConfiguration' not in raw else _seen(value)))


def parse_policy(raw: Any) -> JoinPolicy:
    """Parse the GET (or PUT response) body of ``policies/deviceRegistrationPolicy``."""
    if not isinstance(raw, dict):
        raise PolicyFormatError('$', 'expected a JSON object, found %s' % _seen(raw))
    join = _object_at(raw, 'azureADJoin', 'azureADJoin')
    _check_not_retired_schema(join)
    quota = raw.get('userDeviceQuota')
    if not isinstance(quota, int) or isinstance(quota, bool):
        raise PolicyFormatError('userDeviceQuota', 'expected a whole number, found %s'
                                % ('nothing' if 'userDeviceQuota' not in raw else _seen(quota)))
    require_mfa = _parse_mfa(raw)
    # carried through as read, but a PUT without it is rejected, so it must be there
    _object_at(raw, 'azureADRegistration', 'azureADRegistration')
    laps = _object_at(raw, 'localAdminPassword', 'localAdminPassword')
    local_admins = _object_at(join, 'localAdmins', 'azureADJoin.localAdmins', required=False)
    global_admins = registering = None
    if local_admins is not None:
        global_admins = _bool_at(local_admins, 'enableGlobalAdmins', 'azureADJoin.localAdmins.enableGlobalAdmins', required=False)
        if local_admins.get('registeringUsers') is not None:
            registering = Membership.from_graph(local_admins['registeringUsers'], 'azureADJoin.localAdmins.registeringUsers')
    return JoinPolicy(
        allowed_to_join=Membership.from_graph(join.get('allowedToJoin'), 'azureADJoin.allowedToJoin'),
        user_device_quota=quota,
        require_mfa=require_mfa,
        local_admins_global=global_admins,
        local_admins_registering=registering,
        laps_enabled=bool(_bool_at(laps, 'isEnabled', 'localAdminPassword.isEnabled')),
    )


def _render_local_admins(read: dict | None, before: JoinPolicy, after: JoinPolicy) -> dict | None:
    """azureADJoin.localAdmins for ``after``; ``read`` is the object as read (None when absent)."""
    rendered = copy.deepcopy(read) if read is not None else {}
    if after.local_admins_global != before.local_admins_global:
        if after.local_admins_global is None:
            rendered.pop('enableGlobalAdmins', None)
        else:
            rendered['enableGlobalAdmins'] = after.local_admins_global
    if after.local_admins_registering != before.local_admins_registering:
        if after.local_admins_registering is None:
            rendered.pop('registeringUsers', None)
        else:
            original = read.get('registeringUsers') if read is not None else None
            rendered['registeringUsers'] = after.local_admins_registering.to_graph(original)
    return rendered


def _render_join(read: dict, before: JoinPolicy, after: JoinPolicy) -> dict:
    rendered = copy.deepcopy(read)
    rendered['allowedToJoin'] = after.allowed_to_join.to_graph(read.get('allowedToJoin'))
    if after.allowed_to_join != before.allowed_to_join:
        # left over from the transition period they describe the old scope; Graph ignores or rejects them
        for key in _LEGACY_JOIN_KEYS:
            rendered.pop(key, None)
    if (after.local_admins_global, after.local_admins_registering) != (before.local_admins_global, before.local_admins_registering):
        rendered['localAdmins'] = _render_local_admins(read.get('localAdmins'), before, after)
    return rendered


def render_put_body(raw: dict, policy: JoinPolicy) -> dict:
    """The full PUT body that turns the policy ``raw`` (as read) into ``policy``.

    Exactly the five updatable properties, in the order read. What did not change is as read; ``isAdminConfigurable``
    and ``azureADRegistration`` are always as read; ``id``, ``displayName``, ``description`` and ``@odata.*`` are
    never sent. The legacy MFA values "0"/"1" are sent as notRequired/required (the current schema rejects them).
    """
    before = parse_policy(raw)
    rendered: dict[str, Any] = {}
    if before.user_device_quota == policy.user_device_quota:
        rendered['userDeviceQuota'] = raw['userDeviceQuota']
    else:
        rendered['userDeviceQuota'] = policy.user_device_quota
    mfa_read = raw['multiFactorAuthConfiguration']
    if before.require_mfa == policy.require_mfa and mfa_read in ('required', 'notRequired'):
        rendered['multiFactorAuthConfiguration'] = mfa_read
    else:
        rendered['multiFactorAuthConfiguration'] = 'required' if policy.require_mfa else 'notRequired'
    rendered['azureADRegistration'] = copy.deepcopy(raw['azureADRegistration'])
    rendered['azureADJoin'] = _render_join(raw['azureADJoin'], before, policy)
    rendered['localAdminPassword'] = copy.deepcopy(raw['localAdminPassword'])
    if before.laps_enabled != policy.laps_enabled:
        rendered['localAdminPassword']['isEnabled'] = policy.laps_enabled
    order = [key for key in raw if key in rendered] + [key for key in UPDATABLE_PROPERTIES if key not in raw]
    return {key: rendered[key] for key in order}


def _membership_config(membership: Membership | None) -> tuple[str | None, list[str], list[str]]:
    if membership is None:
        return None, [], []
    return membership.scope, sorted(membership.users), sorted(membership.groups)


def to_config(policy: JoinPolicy) -> dict:
    """The policy in the option names of entra_device_join_policy, ids sorted: feeding it back changes nothing."""
    scope, users, groups = _membership_config(policy.allowed_to_join)
    registering, admin_users, admin_groups = _membership_config(policy.local_admins_registering)
    return {
        'allowed_to_join': scope,
        'users': users,
        'groups': groups,
        'user_device_quota': policy.user_device_quota,
        'require_mfa': policy.require_mfa,
        'local_admins': {
            'global_admins': policy.local_admins_global,
            'registering_users': registering,
            'users': admin_users,
            'groups': admin_groups,
        },
        'laps_enabled': policy.laps_enabled,
    }


def readable_name(object_id: str, names: Mapping[str, Any]) -> str:
    """The UPN or group name of ``object_id`` (``names`` maps lower-case ids to Principals), or "<id> (deleted)"."""
    principal = names.get(object_id.lower())
    return principal.name if principal is not None else '%s (deleted)' % object_id


def to_readable(policy: JoinPolicy, names: Mapping[str, Any]) -> dict:
    """``to_config`` with UPNs and group names instead of ids; ids missing from ``names`` are marked deleted."""
    config = to_config(policy)

    def readable(ids: list[str]) -> list[str]:
        return sorted((readable_name(object_id, names) for object_id in ids), key=str.lower)

    for holder in (config, config['local_admins']):
        holder['users'] = readable(holder['users'])
        holder['groups'] = readable(holder['groups'])
    return config


def _text(value: Any) -> str:
    if value is None:
        return 'not set'
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return str(value)


def _list_text(ids: Iterable[str]) -> str:
    return ', '.join(sorted(ids))


def _id_set_differences(label: str, expected: frozenset[str], actual: frozenset[str]) -> list[str]:
    if expected == actual:
        return []
    parts = []
    if expected - actual:
        parts.append('missing %s' % _list_text(expected - actual))
    if actual - expected:
        parts.append('not expected %s' % _list_text(actual - expected))
    return ['%s: %s' % (label, '; '.join(parts))]


def _membership_differences(label: str, expected: Membership | None, actual: Membership | None) -> list[str]:
    if expected == actual:
        return []
    if expected is None or actual is None or expected.scope != actual.scope:
        return ['%s: expected %s, found %s' % (label, expected.scope if expected else 'not set', actual.scope if actual else 'not set')]
    return (_id_set_differences(label + ' users', expected.users, actual.users)
            + _id_set_differences(label + ' groups', expected.groups, actual.groups))


_OPTION_LABELS = {
    'local_admins_global': 'local_admins.global_admins',
    'local_admins_registering': 'local_admins.registering_users',
}


def differences(expected: JoinPolicy, actual: JoinPolicy, fields: Iterable[str]) -> list[str]:
    """One line per difference in ``fields`` (JoinPolicy field names, or 'users'/'groups' for the join lists)."""
    found: list[str] = []
    names = list(dict.fromkeys(fields))
    for name in names:
        if name not in FIELDS and name not in _FIELD_ALIASES:
            raise ValueError('unknown policy field %r' % name)
        if name in _FIELD_ALIASES:
            if 'allowed_to_join' in names:
                continue  # compared with the scope
            want, have = expected.allowed_to_join, actual.allowed_to_join
            if want.scope == have.scope == 'selected':
                found += _id_set_differences(name, getattr(want, name), getattr(have, name))
            continue
        want, have = getattr(expected, name), getattr(actual, name)
        label = _OPTION_LABELS.get(name, name)
        if isinstance(want, Membership) or isinstance(have, Membership):
            found += _membership_differences(label, want, have)
        elif want != have:
            found.append('%s: expected %s, found %s' % (label, _text(want), _text(have)))
    return found
