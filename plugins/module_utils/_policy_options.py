# Copyright (c) entra.autopilot contributors
# Simplified BSD License (see LICENSES/BSD-2-Clause.txt or https://opensource.org/licenses/BSD-2-Clause)
# SPDX-License-Identifier: BSD-2-Clause

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the entra.autopilot collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.

"""The options of ``entra_device_join_policy`` turned into the desired policy: its rules and its warnings.

Nothing here does I/O. The module reads the policy, calls :meth:`PolicyOptions.check` (every problem in one
error, before anything is resolved or written), resolves :meth:`PolicyOptions.entries`, builds
:meth:`PolicyOptions.desired` from the resolved ids and collects :meth:`PolicyOptions.warnings`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.entra.autopilot.plugins.module_utils._errors import EntraError
from ansible_collections.entra.autopilot.plugins.module_utils._policy import JoinPolicy, Membership
from ansible_collections.entra.autopilot.plugins.module_utils._principals import NOBODY_CAN_JOIN_WARNING

QUOTA_MAX = 100

MFA_WARNING = (
    "require_mfa: true turns on the tenant-wide 'Require multifactor authentication to register or join devices' setting. "
    "Microsoft recommends the Conditional Access user action 'Register or join devices' instead, and a Conditional Access "
    "policy for that action is only enforced while this setting is off (require_mfa: false)."
)


class OptionsError(EntraError):
    """The task's options cannot be applied; ``problems`` lists each one (each says what to change)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__('Invalid options, nothing was changed: ' + ' '.join(problems), problems=problems)
        self.problems = problems


def listed_ids(policy: JoinPolicy) -> dict[str, set[str]]:
    """The object ids the policy holds (join scope and local administrators) by kind, 'user' and 'group', lower case."""
    listed: dict[str, set[str]] = {'user': set(), 'group': set()}
    for membership in (policy.allowed_to_join, policy.local_admins_registering):
        if membership is not None:
            listed['user'].update(membership.users)
            listed['group'].update(membership.groups)
    return listed


def policy_ids(policy: JoinPolicy) -> set[str]:
    """Every object id the policy holds (join scope and local administrators), lower case."""
    listed = listed_ids(policy)
    return listed['user'] | listed['group']


def entry_ids(entries: Iterable[str], principals: Mapping[str, Any]) -> dict[str, str]:
    """Each entry's lower-case object id, from the resolver's ``{entry: Principal}``.

    An entry without a principal is an id already in the policy whose object was deleted: the resolver lets those
    through (``known_ids``), and a complete list that names one keeps it.
    """
    return {entry: (principals[entry].id if entry in principals else entry).lower() for entry in entries}


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


@dataclasses.dataclass(frozen=True)
class MembershipOptions:
    """A scope option with its complete ``users``/``groups`` lists (join scope, or local admins' registering users)."""

    scope_option: str              # 'allowed_to_join' or 'local_admins.registering_users'
    list_prefix: str               # '' or 'local_admins.'
    scope: str | None = None
    users: tuple[str, ...] | None = None
    groups: tuple[str, ...] | None = None

    @property
    def managed(self) -> bool:
        return self.scope is not None or self.users is not None or self.groups is not None

    def _given_lists(self) -> str:
        names = [self.list_prefix + name for name, values in (('users', self.users), ('groups', self.groups)) if values]
        return ' and '.join(names)

    def problems(self, current: Membership | None) -> list[str]:
        # Empty lists are fine with any scope: All and None store no lists, and info's config carries [] for them.
        given = self._given_lists()
        if not given:
            return []
        if self.scope is not None and self.scope != 'selected':
            return ["%s only apply to %s: selected, not %s. Remove %s, or set %s: selected."
                    % (given, self.scope_option, self.scope, given, self.scope_option)]
        if self.scope is None and (current is None or current.scope != 'selected'):
            now = current.scope if current is not None else 'not set'
            return ["%s replace the Selected list, but %s is currently %s in the tenant. Set %s: selected to restrict it "
                    "to these users and groups." % (given, self.scope_option, now, self.scope_option)]
        return []

    def build(self, current: Membership | None, user_ids: Mapping[str, str], group_ids: Mapping[str, str]) -> Membership | None:
        scope = self.scope or (current.scope if current is not None else None)
        if scope is None:
            return current
        if scope != 'selected':
            return Membership(scope)
        keep = current if current is not None and current.scope == 'selected' else Membership('selected')
        users = frozenset(user_ids[entry] for entry in self.users) if self.users is not None else keep.users
        groups = frozenset(group_ids[entry] for entry in self.groups) if self.groups is not None else keep.groups
        return Membership('selected', users, groups)


@dataclasses.dataclass(frozen=True)
class PolicyOptions:
    """What one task asks for; ``None`` everywhere means "leave as it is"."""

    join: MembershipOptions
    registering: MembershipOptions
    user_device_quota: int | None = None
    require_mfa: bool | None = None
    global_admins: bool | None = None
    laps_enabled: bool | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> PolicyOptions:
        def as_tuple(values: list[str] | None) -> tuple[str, ...] | None:
            return None if values is None else tuple(values)

        local_admins = params.get('local_admins') or {}
        return cls(
            join=MembershipOptions('allowed_to_join', '', params.get('allowed_to_join'),
                                   as_tuple(params.get('users')), as_tuple(params.get('groups'))),
            registering=MembershipOptions('local_admins.registering_users', 'local_admins.', local_admins.get('registering_users'),
                                          as_tuple(local_admins.get('users')), as_tuple(local_admins.get('groups'))),
            user_device_quota=params.get('user_device_quota'),
            require_mfa=params.get('require_mfa'),
            global_admins=local_admins.get('global_admins'),
            laps_enabled=params.get('laps_enabled'),
        )

    def check(self, current: JoinPolicy) -> None:
        """Raise OptionsError naming every option that cannot be applied to ``current``."""
        problems = self.join.problems(current.allowed_to_join)
        problems += self.registering.problems(current.local_admins_registering)
        quota = self.user_device_quota
        # A value already stored outside the range is carried through, so feeding info's config back stays a no-op.
        if quota is not None and quota != current.user_device_quota and not 0 <= quota <= QUOTA_MAX:
            if quota < 0:
                problems.append("user_device_quota must be between 0 and %d, got %d: it is a number of devices." % (QUOTA_MAX, quota))
            else:
                problems.append("user_device_quota must be between 0 and %d, got %d: the portal stores values above %d as %d, "
                                "so the tenant would never match. Use %d for the largest quota."
                                % (QUOTA_MAX, quota, QUOTA_MAX, QUOTA_MAX, QUOTA_MAX))
        if problems:
            raise OptionsError(problems)

    def entries(self) -> tuple[list[str], list[str]]:
        """The user and group entries to resolve, each once, in the order given."""
        users = [*(self.join.users or ()), *(self.registering.users or ())]
        groups = [*(self.join.groups or ()), *(self.registering.groups or ())]
        return _unique(users), _unique(groups)

    def fields(self) -> list[str]:
        """The JoinPolicy fields this task sets (what must be in place after a write)."""
        requested = {
            'allowed_to_join': self.join.managed,
            'user_device_quota': self.user_device_quota is not None,
            'require_mfa': self.require_mfa is not None,
            'local_admins_global': self.global_admins is not None,
            'local_admins_registering': self.registering.managed,
            'laps_enabled': self.laps_enabled is not None,
        }
        return [field for field, wanted in requested.items() if wanted]

    def desired(self, current: JoinPolicy, user_ids: Mapping[str, str], group_ids: Mapping[str, str]) -> JoinPolicy:
        """``current`` with the requested changes; ``user_ids``/``group_ids`` map each entry to its lower-case id."""
        def pick(value: Any, now: Any) -> Any:
            return now if value is None else value

        return dataclasses.replace(
            current,
            allowed_to_join=self.join.build(current.allowed_to_join, user_ids, group_ids),
            user_device_quota=pick(self.user_device_quota, current.user_device_quota),
            require_mfa=pick(self.require_mfa, current.require_mfa),
            local_admins_global=pick(self.global_admins, current.local_admins_global),
            local_admins_registering=self.registering.build(current.local_admins_registering, user_ids, group_ids),
            laps_enabled=pick(self.laps_enabled, current.laps_enabled),
        )

    def warnings(self, current: JoinPolicy, desired: JoinPolicy) -> list[str]:
        """Warnings about the result that do not need Graph (group contents are checked by the module)."""
        warnings = []
        if self.join.managed and desired.allowed_to_join.is_empty_selection:
            warnings.append(NOBODY_CAN_JOIN_WARNING + ' Add users or groups, or set allowed_to_join: none to say so explicitly.')
        if self.user_device_quota == 0 and current.user_device_quota != 0:
            warnings.append('user_device_quota: 0 means no user can join or register any more devices.')
        if self.require_mfa and not current.require_mfa:
            warnings.append(MFA_WARNING)
        return warnings


def check_join_configurable(raw: Mapping[str, Any], current: JoinPolicy, desired: JoinPolicy) -> None:
    """Refuse a change of the join scope or local administrators when the tenant marks azureADJoin as read-only.

    Graph rejects such a PUT; failing first says why and writes nothing (the other settings stay changeable).
    """
    join = raw.get('azureADJoin')
    if not isinstance(join, Mapping) or join.get('isAdminConfigurable') is not False:
        return
    changed = [option for option, before, after in (
        ('allowed_to_join', current.allowed_to_join, desired.allowed_to_join),
        ('local_admins.global_admins', current.local_admins_global, desired.local_admins_global),
        ('local_admins.registering_users', current.local_admins_registering, desired.local_admins_registering),
    ) if before != after]
    if changed:
        raise OptionsError(['This tenant does not let administrators change who may join devices or who becomes local '
                            'administrator (azureADJoin.isAdminConfigurable is false), so %s cannot be changed. Leave %s '
                            'out of the task.' % (' and '.join(changed), 'it' if len(changed) == 1 else 'them')])


def groups_added(current: JoinPolicy, desired: JoinPolicy) -> set[str]:
    """Ids of the groups the desired policy adds to the join scope or the local administrators."""
    added: set[str] = set()
    for before, after in ((current.allowed_to_join, desired.allowed_to_join),
                          (current.local_admins_registering, desired.local_admins_registering)):
        if after is not None and after.scope == 'selected':
            had = before.groups if before is not None and before.scope == 'selected' else frozenset()
            added.update(after.groups - had)
    return added
