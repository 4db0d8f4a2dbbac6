# Copyright (c) entra.autopilot contributors
# Simplified BSD License (see LICENSES/BSD-2-Clause.txt or https://opensource.org/licenses/BSD-2-Clause)
# SPDX-License-Identifier: BSD-2-Clause

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the entra.autopilot collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.

"""Reading and writing the singleton device registration policy, with a check that the write took effect."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ansible_collections.entra.autopilot.plugins.module_utils._errors import EntraError
from ansible_collections.entra.autopilot.plugins.module_utils._policy import JoinPolicy, differences, parse_policy, render_put_body

POLICY_PATH = 'policies/deviceRegistrationPolicy'


class PolicyStore:
    """GET and PUT of ``policies/deviceRegistrationPolicy`` through a GraphClient."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def read(self) -> tuple[dict, JoinPolicy]:
        """The raw policy and its parsed model; raises PolicyFormatError when it cannot be read safely."""
        raw = self.client.get(POLICY_PATH)
        return raw, parse_policy(raw)

    def write(self, raw: dict, desired: JoinPolicy, fields: Iterable[str]) -> dict:
        """PUT the full body that turns ``raw`` (as read) into ``desired``; return the raw policy after the write.

        The result is the PUT response, or a fresh GET when the response has no body. When it does not hold
        ``desired`` in ``fields``, an EntraError names each field that differs.
        """
        fields = list(fields)
        answer = self.client.put(POLICY_PATH, render_put_body(raw, desired))
        after = answer if isinstance(answer, dict) and answer else self.client.get(POLICY_PATH)
        found = differences(desired, parse_policy(after), fields)
        if found:
            raise EntraError('Graph accepted the change of the device registration policy, but the policy it returned '
                             'differs from what was requested: %s. Another tool or administrator may have changed it at '
                             'the same time, or Graph ignored part of the change; run the task again to see the current '
                             'state.' % '; '.join(found), differences=found, policy=after)
        return after
