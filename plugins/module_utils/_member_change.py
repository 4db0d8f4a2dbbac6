# Copyright (c) entra.autopilot contributors
# Simplified BSD License (see LICENSES/BSD-2-Clause.txt or https://opensource.org/licenses/BSD-2-Clause)
# SPDX-License-Identifier: BSD-2-Clause

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the entra.autopilot collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.

"""Adding or removing single members of the Selected join list, without losing concurrent updates.

``decide`` is the pure rule (what a change does for each join scope); ``apply_member_change`` is the
read-modify-write around it: under the per-tenant lock it reads the policy, writes the full body with
only the named entries changed, reads it back and repeats (bounded) when another writer overwrote it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace

from ansible_collections.entra.autopilot.plugins.module_utils._errors import EntraError
from ansible_collections.entra.autopilot.plugins.module_utils._policy import Membership
from ansible_collections.entra.autopilot.plugins.module_utils._policy_store import PolicyStore

# What PolicyStore.write verifies in the PUT response: the join membership, nothing else.
JOIN_FIELDS = ('allowed_to_join', 'users', 'groups')

DEFAULT_ATTEMPTS = 5

EMPTY_SELECTED_WARNING = (
    'The Selected list of "Users may join devices to Microsoft Entra" is now empty, so nobody can join devices '
    'until a user or group is added. The scope stays Selected; use entra.autopilot.entra_device_join_policy to change it.'
)


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

    decision: Decision  # decided on the first read under the lock
    raw: dict  # the policy as read back after the last write, or as read when nothing was written
    writes: int  # PUT requests made (more than one when a concurrent writer undid ours)


def _entries_text(entries: Iterable[str]) -> str:
    named = ', '.join(entries)
    return named or 'the named users and groups'


def decide(current: Membership, change: MemberChange) -> Decision:
    """Apply ``change`` to the join membership ``current`` by the rules of each scope.

    Only the named ids change; every other id (also of deleted objects) is kept as it is. The scope never changes.
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
    warnings: tuple[str, ...] = ()
    if (removed_users or removed_groups) and not after.users and not after.groups:
        warnings = (EMPTY_SELECTED_WARNING,)
    return Decision(membership=after, removed_users=removed_users, removed_groups=removed_groups, warnings=warnings)


def apply_member_change(store: PolicyStore, change: MemberChange, *,
                        lock: Callable[[], AbstractContextManager[object]] | None,
                        attempts: int = DEFAULT_ATTEMPTS, verify: bool = True,
                        sleep: Callable[[float], None] = time.sleep) -> Applied:
    """Read, decide, write and read back under ``lock()``; write again while a concurrent writer undid the change.

    Graph has no ETag for this policy (last writer wins), so two read-modify-writes that overlap lose one update.
    ``lock`` serialises the writers of one controller; the read-back catches an overwrite by anyone else and
    writes again, at most ``attempts`` times. ``lock=None`` and ``verify=False`` exist only so that tests can show
    the race these two prevent; the module always passes both.
    """
    with (lock or nullcontext)():
        raw, policy = store.read()
        first = decision = decide(policy.allowed_to_join, change)
        writes = 0
        while decision.changed:
            if writes == attempts:
                raise EntraError(
                    'The join list was changed by another writer after each of %d writes, so %s is still not in place. '
                    'Another tool or controller is editing "Users may join devices to Microsoft Entra" at the same time; '
                    'run the task again when it is done.' % (attempts, _entries_text(change.entries)))
            if writes:
                # jittered, so that writers on other controllers that collided with us do not collide again
                sleep(0.2 * writes + random.uniform(0, 0.3))
            raw = store.write(raw, replace(policy, allowed_to_join=decision.membership), JOIN_FIELDS)
            writes += 1
            if not verify:
                break
            # read back: an overlapping writer (another controller, or a run without our lock) may have put the
            # list it read before our write, undoing our change; then the change is decided again and rewritten
            raw, policy = store.read()
            decision = decide(policy.allowed_to_join, change)
        return Applied(decision=first, raw=raw, writes=writes)
