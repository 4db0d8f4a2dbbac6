# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Write tests/integration/integration_config.yml from the emulator's state file.

ansible-test passes no environment variables to the targets, so this file is how they learn where the emulator is.
Usage: python integration_config.py STATE_FILE EMULATOR_PYTHON OUTPUT_FILE
"""

from __future__ import annotations

import json
import sys
from typing import Any


def to_yaml(value: Any, indent: int = 0) -> list[str]:
    """Block-style YAML lines; scalars are written as JSON, which YAML reads the same way."""
    pad = '  ' * indent
    lines: list[str] = []
    for key, item in value.items():
        if isinstance(item, dict) and item:
            lines.append(f'{pad}{key}:')
            lines.extend(to_yaml(item, indent + 1))
        else:
            lines.append(f'{pad}{key}: {json.dumps(item)}')
    return lines


def integration_config(state: dict[str, Any], emulator_python: str, state_file: str) -> dict[str, Any]:
    return {
        'emulator_url': state['url'],
        'emulator_control_url': state['control_url'],
        'emulator_authority_host': state['authority_host'],
        'emulator_graph_endpoint': state['graph_endpoint'],
        'emulator_ca_bundle': state['ca_bundle'],
        'emulator_state_file': state_file,
        'emulator_python': emulator_python,
        'emulator_demo': state['demo'],
    }


def main() -> None:
    state_file, emulator_python, output = sys.argv[1:4]
    with open(state_file, encoding='utf-8') as handle:
        state = json.load(handle)
    lines = ['---', '# written by tests/harness for this run of the emulator; do not commit']
    lines += to_yaml(integration_config(state, emulator_python, state_file))
    with open(output, 'w', encoding='utf-8') as handle:
        handle.write('\n'.join(lines) + '\n')


if __name__ == '__main__':
    main()
