# Copyright (c) entra.autopilot contributors
# Simplified BSD License (see LICENSES/BSD-2-Clause.txt or https://opensource.org/licenses/BSD-2-Clause)
# SPDX-License-Identifier: BSD-2-Clause

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the entra.autopilot collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.

"""Whether named users may join devices under a join membership, and why.

A user is covered by the scope All, by being listed in the Selected list, or by being a member of a listed group.
Group membership is asked from Graph with ``checkMemberGroups``, which is transitive (members of nested groups
count), in one ``$batch`` for every user: one call per user and 20 groups.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ansible_collections.entra.autopilot.plugins.module_utils._errors import EntraError
from ansible_collections.entra.autopilot.plugins.module_utils._graph_client import BatchRequest
from ansible_collections.entra.autopilot.plugins.module_utils._policy import SCOPES, Membership
from ansible_collections.entra.autopilot.plugins.module_utils._principals import Principal, PrincipalResolver, is_object_id

CHECK_GROUPS_LIMIT = 20  # groupIds per checkMemberGroups call (Graph documents "up to 20")

SETTING = '"Users may join devices to Microsoft Entra"'


@dataclass(frozen=True)
class UserCoverage:
    """One checked user: ``via`` is 'all', 'listed' or 'group' when covered, None when not."""

    entry: str
    covered: bool
    reason: str
    via: str | None = None
    principal: Principal | None = None  # None when no user matches the entry
    groups: tuple[Principal, ...] = ()  # the listed groups the user is a member of (directly or nested)

    def to_result(self) -> dict[str, Any]:
        return {
            'user': self.entry,
            'id': self.principal.id if self.principal else None,
            'user_principal_name': self.principal.name if self.principal else None,
            'display_name': self.principal.display_name if self.principal else None,
            'covered': self.covered,
            'via': self.via,
            'groups': [{'id': group.id, 'display_name': group.name} for group in self.groups],
            'reason': self.reason,
        }


def membership_from_option(value: Mapping[str, Any]) -> Membership:
    """The ``check_against`` option (the join part of a ``config``: scope and object ids) as a Membership.

    Raises EntraError naming every problem; names are refused, since only ids say exactly who is listed.
    """
    scope = value.get('allowed_to_join')
    users = list(value.get('users') or [])
    groups = list(value.get('groups') or [])
    problems = []
    if scope not in SCOPES:
        problems.append('check_against.allowed_to_join must be one of %s, got %r.' % (', '.join(SCOPES), scope))
    for option, entries in (('users', users), ('groups', groups)):
        names = [str(entry) for entry in entries if not is_object_id(str(entry))]
        if names:
            problems.append('check_against.%s takes object ids (the config returned by entra_device_join_policy), not %s.'
                            % (option, ', '.join(names)))
    if scope in SCOPES and scope != 'selected' and (users or groups):
        problems.append('check_against.users and check_against.groups only apply to allowed_to_join: selected, not %s.' % scope)
    if problems:
        raise EntraError('Invalid options, nothing was checked: ' + ' '.join(problems), problems=problems)
    return Membership(scope, frozenset(item.strip().lower() for item in users), frozenset(item.strip().lower() for item in groups))


def _group_text(groups: Iterable[Principal]) -> str:
    names = sorted(group.name for group in groups)
    return '%s %s' % ('group' if len(names) == 1 else 'groups', ', '.join(names))


def check_users(resolver: PrincipalResolver, membership: Membership, entries: list[str],
                names: Mapping[str, Principal] | None = None) -> list[UserCoverage]:
    """Check each entry (UPN or object id) against ``membership``, in the order given (duplicates once).

    ``names`` are principals already looked up (by lower-case id), so the listed groups are not looked up twice.
    An entry that names no user is not covered (it is not an error: the result says so); a group given as a user
    and other resolution problems raise ResolutionError; Graph errors raise GraphError.
    """
    entries = list(dict.fromkeys(entry.strip() for entry in entries if entry and entry.strip()))
    if not entries:
        return []
    names = dict(names or {})
    listed_groups = sorted(membership.groups) if membership.scope == 'selected' else []
    unnamed = [group_id for group_id in listed_groups if group_id not in names]
    resolved = resolver.resolve(entries, [], known_ids=unnamed, allow_missing=True)
    names.update(resolved.principals)
    # deleted groups have no members; checkMemberGroups would ignore them anyway
    groups = [names[group_id] for group_id in listed_groups if group_id in names and names[group_id].type == 'group']

    results: dict[str, UserCoverage] = {}
    to_check: dict[str, Principal] = {}
    for entry in entries:
        user = resolved.users.get(entry)
        if user is None:
            results[entry] = UserCoverage(entry, False, 'cannot join: no user has this userPrincipalName or object id.')
        elif membership.scope == 'all':
            results[entry] = UserCoverage(entry, True, 'may join: %s is All.' % SETTING, 'all', user)
        elif membership.scope == 'none':
            results[entry] = UserCoverage(entry, False, 'cannot join: %s is None, so nobody may join devices.' % SETTING, None, user)
        elif user.id in membership.users:
            results[entry] = UserCoverage(entry, True, 'may join: listed directly in the Selected list.', 'listed', user)
        else:
            to_check[entry] = user

    member_of = _member_groups(resolver, {user.id for user in to_check.values()}, [group.id for group in groups])
    for entry, user in to_check.items():
        found = tuple(group for group in groups if group.id in member_of.get(user.id, set()))
        if user.id not in member_of:
            results[entry] = UserCoverage(entry, False, 'cannot join: no user has this userPrincipalName or object id '
                                          '(it was deleted while being checked).')
        elif found:
            results[entry] = UserCoverage(entry, True, 'may join: member of the selected %s.' % _group_text(found), 'group', user, found)
        elif groups:
            results[entry] = UserCoverage(entry, False, 'cannot join: not in the Selected list and not a member of the selected %s.'
                                          % _group_text(groups), None, user)
        else:
            results[entry] = UserCoverage(entry, False, 'cannot join: not in the Selected list, which holds no groups.', None, user)
    return [results[entry] for entry in entries]


def _member_groups(resolver: PrincipalResolver, user_ids: set[str], group_ids: list[str]) -> dict[str, set[str]]:
    """For each user id, the ids among ``group_ids`` it is a transitive member of (one $batch for all of them).

    A user that Graph no longer finds (404) is absent from the answer.
    """
    if not user_ids:
        return {}
    if not group_ids:
        return {user_id: set() for user_id in user_ids}
    chunks = [group_ids[start:start + CHECK_GROUPS_LIMIT] for start in range(0, len(group_ids), CHECK_GROUPS_LIMIT)]
    requests: list[BatchRequest] = []
    owner: dict[str, str] = {}
    for user_id in sorted(user_ids):
        for chunk in chunks:
            request_id = 'check%d' % len(requests)
            owner[request_id] = user_id
            requests.append(BatchRequest(id=request_id, method='POST', url='users/%s/checkMemberGroups' % quote(user_id),
                                         body={'groupIds': chunk}))
    answers = resolver.client.batch(requests)
    member_of: dict[str, set[str]] = {user_id: set() for user_id in user_ids}
    for request in requests:
        answer = answers[request.id]
        user_id = owner[request.id]
        if answer.status == 404:
            member_of.pop(user_id, None)
            continue
        error = answer.error()
        if error is not None:
            raise error
        value = answer.body.get('value') if isinstance(answer.body, dict) else None
        if not isinstance(value, list):
            raise EntraError('Graph POST users/%s/checkMemberGroups returned no "value" list.' % user_id)
        if user_id in member_of:
            member_of[user_id].update(str(item).lower() for item in value)
    return member_of


def coverage_result(membership: Membership, evaluated: str, checked: list[UserCoverage]) -> dict[str, Any]:
    """The ``coverage`` return value of entra_device_join_policy_info."""
    return {
        'allowed_to_join': membership.scope,
        'evaluated': evaluated,
        'users': [item.to_result() for item in checked],
        'uncovered': [item.entry for item in checked if not item.covered],
    }
