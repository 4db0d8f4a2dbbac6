# Copyright (c) entra.autopilot contributors
# Simplified BSD License (see LICENSES/BSD-2-Clause.txt or https://opensource.org/licenses/BSD-2-Clause)
# SPDX-License-Identifier: BSD-2-Clause

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the entra.autopilot collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.

"""The one exception type that modules turn into ``fail_json``."""

from __future__ import annotations

from typing import Any


class EntraError(Exception):
    """A failure to report to the user.

    ``str(error)`` is one clear line: what failed, why, and what to do about it.
    ``details`` are extra keys for the task result; they never hold secrets.
    """

    def __init__(self, msg: str, **details: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.details = details

    def __str__(self) -> str:
        return self.msg
