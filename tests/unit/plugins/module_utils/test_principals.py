# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Principal resolution: URL building and count parsing, then real lookups against the emulator over HTTPS."""

from __future__ import annotations

import base64
import urllib.parse

import pytest

from ansible_collections.entra.autopilot.plugins.module_utils._policy import Membership
from ansible_collections.entra.autopilot.plugins.module_utils._principals import (
    NOBODY_CAN_JOIN_WARNING,
    SEED_GROUP_NOTE,
    Principal,
    _count_value,
    group_filter_path,
    group_warnings,
    is_object_id,
    nobody_can_join_warning,
    user_path,
)

GROUP = Principal('44444444-4444-4444-8444-444444444444', 'group', 'Autopilot devices')


class TestObjectIds:
    @pytest.mark.parametrize('value', ['3c8ef067-8b96-44de-b2ae-557dfa0f97a0', '3C8EF067-8B96-44DE-B2AE-557DFA0F97A0',
                                       ' 3c8ef067-8b96-44de-b2ae-557dfa0f97a0 '])
    def test_object_ids(self, value):
        assert is_object_id(value)

    @pytest.mark.parametrize('value', ['adele@contoso.com', '3c8ef0678b9644deb2ae557dfa0f97a0', '{3c8ef067-8b96-44de-b2ae-557dfa0f97a0}',
                                       '3c8ef067-8b96-44de-b2ae-557dfa0f97ag', 'Autopilot users', ''])
    def test_not_object_ids(self, value):
        assert not is_object_id(value)


class TestPaths:
    def test_guest_upn_hash_is_percent_encoded(self):
        assert user_path('adele_fabrikam.com#EXT#@contoso.onmicrosoft.com') == 'users/adele_fabrikam.com%23EXT%23@contoso.onmicrosoft.com'

    def test_reserved_characters_are_encoded_and_decode_back(self):
        upn = "o'neil+test/x?y&z=1 %@contoso.com"
        path = user_path(upn)
        segment = path[len('users/'):]
        assert '/' not in segment and '?' not in segment and '&' not in segment and '#' not in segment and ' ' not in segment
        assert urllib.parse.unquote(segment) == upn

    def test_dollar_upn_uses_the_key_syntax_with_doubled_quotes(self):
        assert user_path('$adele@contoso.com') == "users('$adele@contoso.com')"
        assert user_path("$o'neil#EXT#@contoso.com") == "users('$o''neil%23EXT%23@contoso.com')"

    def test_group_filter_doubles_apostrophes_and_encodes(self):
        path = group_filter_path("O'Brien's devices & more #1 + 100%")
        assert path.startswith('groups?$filter=') and path.endswith('&$select=id,displayName,mail')
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
        assert query['$filter'] == ["displayName eq 'O''Brien''s devices & more #1 + 100%'"]
        assert query['$select'] == ['id,displayName,mail']


class TestCounts:
    @pytest.mark.parametrize('body, expected', [
        (893, 893), (0, 0), ('893', 893), (' 12\n', 12), ('0', 0),
        (base64.b64encode(b'893').decode(), 893), (base64.b64encode(b'0').decode(), 0),
        (base64.b64encode(b'7\r\n').decode(), 7),
    ])
    def test_count_body_shapes(self, body, expected):
        assert _count_value(body) == expected

    @pytest.mark.parametrize('body', [None, True, {'value': 3}, 'many', base64.b64encode(b'many').decode(), '-1', 1.5])
    def test_unreadable_counts(self, body):
        assert _count_value(body) is None


class TestWarnings:
    def test_group_without_users_quotes_the_seed_note(self):
        warnings = group_warnings([GROUP], {GROUP.id: 0})
        assert len(warnings) == 1
        assert 'Autopilot devices (%s) contains no user objects' % GROUP.id in warnings[0]
        assert warnings[0].endswith(SEED_GROUP_NOTE)
        assert SEED_GROUP_NOTE == 'Any selected groups must be a Microsoft Entra group that contains user objects.'

    def test_group_with_users_is_fine_and_an_uncounted_group_is_said(self):
        assert group_warnings([GROUP], {GROUP.id: 3}) == []
        assert 'Could not count the user members of the group Autopilot devices' in group_warnings([GROUP], {})[0]

    def test_nobody_can_join(self):
        assert nobody_can_join_warning(Membership('selected')) == NOBODY_CAN_JOIN_WARNING
        assert 'nobody can join' in NOBODY_CAN_JOIN_WARNING
        assert nobody_can_join_warning(Membership('selected', {GROUP.id})) is None
        assert nobody_can_join_warning(Membership('none')) is None
        assert nobody_can_join_warning(None) is None
