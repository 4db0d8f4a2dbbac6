# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A local emulator of Microsoft Entra ID login and the Microsoft Graph calls entra.autopilot makes.

Start it with ``PYTHONPATH=tests/emulator python -m graph_emulator --state-file PATH``.
It serves HTTPS on 127.0.0.1 with its own CA, and writes PATH (URLs, CA bundle, demo credentials) when ready.
"""

from __future__ import annotations

__version__ = '1.0.0'
