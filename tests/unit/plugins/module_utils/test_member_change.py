# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The add/remove rule of entra_device_join_member (pure), and its read-modify-write against the emulator."""

from __future__ import annotations

import pytest

from ansible_collections.entra.autopilot.plugins.module_utils._errors import EntraError
from ansible_collections.entra.autopilot.plugins.module_utils._member_change import MemberChange, decide
from ansible_collections.entra.autopilot.plugins.module_utils._policy import Membership
from ansible_collections.entra.autopilot.plugins.module_utils._principals import NOBODY_CAN_JOIN_WARNING

U1, U2, U3 = ('11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222',
              '33333333-3333-4333-8333-333333333333')
G1, G2 = '44444444-4444-4444-8444-444444444444', '55555555-5555-4555-8555-555555555555'
DELETED = '99999999-9999-4999-8999-999999999999'  # an id of a deleted user, kept in the list


def selected(users=(), groups=()) -> Membership:
    return Membership(scope='selected', users=frozenset(users), groups=frozenset(groups))


def present(users=(), groups=(), entries=('x',)) -> MemberChange:
    return MemberChange(state='present', users=frozenset(users), groups=frozenset(groups), entries=tuple(entries))


def absent(users=(), groups=(), entries=('x',)) -> MemberChange:
    return MemberChange(state='absent', users=frozenset(users), groups=frozenset(groups), entries=tuple(entries))


class TestSelected:
    def test_present_adds_only_missing_entries_and_keeps_the_rest(self):
        current = selected(users=[U1, DELETED], groups=[G1])
        decision = decide(current, present(users=[U1, U2], groups=[G2]))
        assert decision.changed
        assert decision.added_users == {U2}
        assert decision.added_groups == {G2}
        assert not decision.removed_users and not decision.removed_groups
        assert decision.membership == selected(users=[U1, U2, DELETED], groups=[G1, G2])
        assert decision.warnings == ()

    def test_present_of_entries_already_there_is_no_change(self):
        current = selected(users=[U1, DELETED], groups=[G1])
        decision = decide(current, present(users=[U1, DELETED], groups=[G1]))
        assert not decision.changed
        assert decision.membership == current

    def test_absent_removes_only_named_entries_that_are_there(self):
        current = selected(users=[U1, U2, DELETED], groups=[G1, G2])
        decision = decide(current, absent(users=[U2, U3], groups=[G1]))
        assert decision.removed_users == {U2}
        assert decision.removed_groups == {G1}
        assert decision.membership == selected(users=[U1, DELETED], groups=[G2])
        assert decision.warnings == ()

    def test_absent_removes_a_deleted_objects_id(self):
        decision = decide(selected(users=[U1, DELETED]), absent(users=[DELETED]))
        assert decision.removed_users == {DELETED}
        assert decision.membership == selected(users=[U1])

    def test_absent_of_entries_not_there_is_no_change(self):
        current = selected(users=[U1], groups=[G1])
        decision = decide(current, absent(users=[U2], groups=[G2]))
        assert not decision.changed
        assert decision.membership == current

    def test_a_user_id_never_touches_the_group_list(self):
        # the same id named as a user does not remove it from groups (types are separate lists)
        current = selected(users=[U1], groups=[G1])
        assert not decide(current, absent(users=[G1])).changed

    def test_removing_the_last_member_keeps_selected_and_warns(self):
        decision = decide(selected(users=[U1], groups=[G1]), absent(users=[U1], groups=[G1]))
        assert decision.changed
        assert decision.membership == selected()
        assert decision.membership.scope == 'selected'
        assert decision.warnings == (NOBODY_CAN_JOIN_WARNING,)
        assert 'nobody can join' in NOBODY_CAN_JOIN_WARNING

    def test_an_already_empty_list_does_not_warn_again(self):
        decision = decide(selected(), absent(users=[U1]))
        assert not decision.changed
        assert decision.warnings == ()

    def test_adding_to_an_empty_list(self):
        decision = decide(selected(), present(groups=[G1]))
        assert decision.membership == selected(groups=[G1])


class TestAll:
    @pytest.mark.parametrize('change', [present(users=[U1], entries=['jane@contoso.com']),
                                        absent(users=[U1], entries=['jane@contoso.com'])])
    def test_no_change_and_a_warning_naming_the_entry(self, change):
        current = Membership(scope='all')
        decision = decide(current, change)
        assert not decision.changed
        assert decision.membership == current
        assert len(decision.warnings) == 1
        assert 'jane@contoso.com' in decision.warnings[0]
        assert 'scope is All' in decision.warnings[0]

    def test_present_says_every_user_may_already_join_and_nothing_is_stored(self):
        (warning,) = decide(Membership(scope='all'), present(users=[U1])).warnings
        assert 'every user may already join' in warning
        assert 'no member list is stored' in warning

    def test_absent_says_the_entry_can_still_join(self):
        (warning,) = decide(Membership(scope='all'), absent(users=[U1], entries=['jane@contoso.com'])).warnings
        assert 'jane@contoso.com can still join' in warning


class TestNone:
    def test_present_fails_and_says_to_set_selected_first(self):
        with pytest.raises(EntraError) as raised:
            decide(Membership(scope='none'), present(users=[U1], entries=['jane@contoso.com', 'Helpdesk']))
        message = str(raised.value)
        assert 'jane@contoso.com, Helpdesk' in message
        assert 'allowed_to_join: selected' in message
        assert 'entra.autopilot.entra_device_join_policy' in message

    def test_absent_is_no_change_without_warning(self):
        current = Membership(scope='none')
        decision = decide(current, absent(users=[U1]))
        assert not decision.changed
        assert decision.membership == current
        assert decision.warnings == ()
