# Copyright (c) entra.autopilot contributors
# Simplified BSD License (see LICENSES/BSD-2-Clause.txt or https://opensource.org/licenses/BSD-2-Clause)
# SPDX-License-Identifier: BSD-2-Clause

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the entra.autopilot collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.

"""Adding single members to, or removing them from, the Selected join list without losing concurrent updates.

``resolve_change`` turns the task's entries into object ids; ``decide`` is the rule for each join scope (pure);
``apply_member_change`` is the read-modify-write around it: under the per-tenant lock it reads the policy, writes the
full body with only the named entries changed, reads it back and writes again (bounded) when another writer undid it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace

from ansible_collections.entra.autopilot.plugins.module_utils._errors import EntraError
from ansible_collections.entra.autopilot.plugins.module_utils._policy import JoinPolicy, Membership
from ansible_collections.entra.autopilot.plugins.module_utils._policy_store import PolicyStore
from ansible_collections.entra.autopilot.plugins.module_utils._principals import (
    OTHER_KIND,
    Principal,
    PrincipalResolver,
    is_object_id,
    nobody_can_join_warning,
)

# What PolicyStore.write checks in the PUT response: the join scope and its lists, nothing else.
JOIN_FIELDS = ('allowed_to_join',)

DEFAULT_ATTEMPTS = 5


@dataclass(frozen=True)
class MemberChange:
    """What one task asks for, as lower-case object ids; ``entries`` are the names as given, for messages."""

    state: str  # present | absent
    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    entries: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    """The join membership after the change and what differs from before."""

    membership: Membership
    added_users: frozenset[str] = frozenset()
    added_groups: frozenset[str] = frozenset()
    removed_users: frozenset[str] = frozenset()
    removed_groups: frozenset[str] = frozenset()
    warnings: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.added_users or self.added_groups or self.removed_users or self.removed_groups)


@dataclass(frozen=True)
class Applied:
    """The outcome of ``apply_member_change``."""

    before: JoinPolicy  # as read under the lock
    decision: Decision  # decided on that read
    raw: dict  # the policy as read back after the last write, or as read when nothing was written
    writes: int  # PUT requests made (more than one when a concurrent writer undid ours)


def _entries_text(entries: Iterable[str]) -> str:
    return ', '.join(entries) or 'the named users and groups'


def check_entries(users: list[str], groups: list[str]) -> None:
    """Reject empty entries, and a task that names nobody, before anything is read."""
    problems = ['%s: entry %d is empty.' % (option, index) for option, entries in (('users', users), ('groups', groups))
                for index, entry in enumerate(entries, 1) if not entry or not entry.strip()]
    if problems:
        raise EntraError('Invalid options, nothing was changed: %s Give each user as an object id or userPrincipalName, '
                         'each group as an object id or display name.' % ' '.join(problems), problems=problems)
    if not users and not groups:
        raise EntraError('Nothing to change: users and groups are both empty. Name at least one user or group.')


def resolve_change(resolver: PrincipalResolver, current: JoinPolicy, state: str, users: list[str],
                   groups: list[str], *, names: bool = True) -> tuple[MemberChange, dict[str, Principal], list[str]]:
    """The task's entries as a MemberChange, the principals found by id (for names), and warnings.

    Resolution only matters while the scope is Selected (with All or None nothing is stored), so no lookup is made
    otherwise. ``present``: every entry must name an existing user or group (an id already in the list need not,
    and is not looked up); any problem fails before anything is written. ``absent``: an id is removed even when its
    object was deleted (the ids are looked up for the names of what is removed); an entry that names nothing is
    already absent (a warning); ambiguous names and entries of the wrong kind fail. With ``names`` (for the diff) the
    same getByIds also covers the current list, whose names the diff shows.
    """
    entries = tuple(dict.fromkeys(entry.strip() for entry in list(users) + list(groups)))
    if current.allowed_to_join.scope != 'selected':
        return MemberChange(state=state, entries=entries), {}, []
    join = current.allowed_to_join
    listed = {'user': join.users, 'group': join.groups}
    known = set(join.users | join.groups) if names else set()
    if state == 'absent':
        # the ids being removed are looked up for the names `removed` reports; a listed id need not exist
        known.update(entry.strip().lower() for entry in list(users) + list(groups))
    resolved = resolver.resolve(users, groups, known_ids=known, listed=listed, allow_missing=state == 'absent')
    warnings = [warning for kind, entry in resolved.missing if (warning := _not_there_warning(kind, entry, listed))]
    change = MemberChange(state=state, users=frozenset(principal.id for principal in resolved.users.values()),
                          groups=frozenset(principal.id for principal in resolved.groups.values()), entries=entries)
    return change, resolved.principals, warnings


def _not_there_warning(kind: str, entry: str, listed: Mapping[str, frozenset[str]]) -> str | None:
    """``absent``: what to say of an entry that matches nothing the list could hold (it is already absent)."""
    if is_object_id(entry):
        other = OTHER_KIND[kind]
        if entry.strip().lower() in listed[other]:
            return ('%s %s is not in the list of %ss, but the list of %ss holds it (the id of a deleted object); nothing was '
                    'removed. To remove it, give it under %ss.' % (kind.capitalize(), entry, kind, other, other))
        return None  # no such object and not listed: absent, as asked (a second run of a removal lands here)
    # the name may have been a deleted object's, whose id can still be listed: say how to remove that
    return ('%s %s names no existing %s, so nothing was removed by that name. The id of a deleted %s stays listed until '
            'it is removed by its object id (entra_device_join_policy_info lists such ids as unresolved).'
            % (kind.capitalize(), entry, kind, kind))


def decide(current: Membership, change: MemberChange) -> Decision:
    """Apply ``change`` to the join membership ``current`` by the rule of its scope.

    Only the named ids change; every other id (also of deleted objects) is kept. The scope never changes.
    Raises EntraError when members are added while the scope is None.
    """
    if current.scope == 'all':
        if change.state == 'present':
            warning = ('The join scope is All: every user may already join devices, and no member list is stored while '
                       'the scope is All, so nothing was added (%s). To keep a Selected list, set allowed_to_join: selected '
                       'with entra.autopilot.entra_device_join_policy first.' % _entries_text(change.entries))
        else:
            warning = ('The join scope is All, so %s can still join devices; nothing was removed. To restrict joining, '
                       'set allowed_to_join: selected with entra.autopilot.entra_device_join_policy.' % _entries_text(change.entries))
        return Decision(membership=current, warnings=(warning,))
    if current.scope == 'none':
        if change.state == 'present':
            raise EntraError(
                'Cannot add %s: the join scope is None (nobody may join devices to Microsoft Entra). Set allowed_to_join: '
                'selected with entra.autopilot.entra_device_join_policy first, then add members.' % _entries_text(change.entries))
        return Decision(membership=current)

    if change.state == 'present':
        added_users = change.users - current.users
        added_groups = change.groups - current.groups
        after = replace(current, users=current.users | added_users, groups=current.groups | added_groups)
        return Decision(membership=after, added_users=added_users, added_groups=added_groups)

    removed_users = change.users & current.users
    removed_groups = change.groups & current.groups
    after = replace(current, users=current.users - removed_users, groups=current.groups - removed_groups)
    # removing the last member keeps Selected (never a silent switch to None or All), which nobody can use
    warning = nobody_can_join_warning(after) if removed_users or removed_groups else None
    return Decision(membership=after, removed_users=removed_users, removed_groups=removed_groups,
                    warnings=(warning,) if warning else ())


def apply_member_change(store: PolicyStore, change: MemberChange, *,
                        lock: Callable[[], AbstractContextManager[object]] | None,
                        attempts: int = DEFAULT_ATTEMPTS, verify: bool = True,
                        sleep: Callable[[float], None] = time.sleep) -> Applied:
    """Read, decide, write and read back under ``lock()``; write again while a concurrent writer undid the change.

    Graph has no ETag for this policy (last writer wins), so two read-modify-writes that overlap lose one update.
    ``lock`` serialises the writers of one controller; the read-back catches an overwrite by anyone else and writes
    again, ``attempts`` writes at most. ``lock=None`` and ``verify=False`` exist only so that tests can show the race
    these two prevent; the module always passes both.
    """
    with (lock or nullcontext)():
        raw, before = store.read()
        first = decision = decide(before.allowed_to_join, change)
        policy = before
        writes = 0
        while decision.changed:
            if writes == attempts:
                raise EntraError(
                    'The join list was changed by another writer after each of %d writes, so %s is still not in place. '
                    'Another tool or controller is editing "Users may join devices to Microsoft Entra" at the same time; '
                    'run the task again when it is done.' % (attempts, _entries_text(change.entries)), writes=writes)
            if writes:
                # jittered, so that writers on other controllers that collided with us do not collide again
                sleep(0.2 * writes + random.uniform(0, 0.3))
            raw = store.write(raw, replace(policy, allowed_to_join=decision.membership), JOIN_FIELDS)
            writes += 1
            if not verify:
                break
            # read back: a writer that read before our write and wrote after it (another controller, or a run
            # without the lock) put back the list it read, undoing our change; then decide again and rewrite
            raw, policy = store.read()
            decision = decide(policy.allowed_to_join, change)
        return Applied(before=before, decision=first, raw=raw, writes=writes)
