# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Write the inventory `make demo` uses: two emulator tenants, in the inventory convention of the playbooks.

Contoso is the emulator's demo tenant (Selected); Fabrikam is made from the `unrestricted` seed (All) through the
control API. Each host gets its connection settings as entra_* variables and its desired state as device_join_*.
Usage: python demo_inventory.py STATE_FILE OUTPUT_DIR   (writes OUTPUT_DIR/inventory.yml)
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

# tests/harness/demo_inventory.py -> tests/emulator, so the script runs with any python that has the stdlib
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'emulator'))

from graph_emulator.control import EmulatorControl  # noqa: E402

# what each tenant should look like (the role's variables)
DESIRED = {
    'contoso': {
        'device_join_allowed_to_join': 'selected',
        'device_join_membership': 'additive',
        'device_join_users': ['AlexW@contoso.com'],
        'device_join_groups': ['Autopilot Technicians'],
        'device_join_user_device_quota': 20,
        'device_join_required_members': ['AlexW@contoso.com', 'LeeG@contoso.com'],
    },
    'fabrikam': {
        'device_join_allowed_to_join': 'selected',
        'device_join_membership': 'exclusive',
        'device_join_groups': ['Autopilot Technicians'],
        'device_join_required_members': ['AdeleV@contoso.com'],
    },
}


def connection(state: dict[str, Any], credentials: dict[str, Any]) -> dict[str, Any]:
    return {
        'ansible_connection': 'local',
        'entra_tenant_id': credentials['tenant_id'],
        'entra_client_id': credentials['client_id'],
        'entra_client_secret': credentials['client_secret'],
        'entra_authority_host': state['authority_host'],
        'entra_graph_endpoint': state['graph_endpoint'],
        'entra_ca_bundle': state['ca_bundle'],
    }


def main() -> None:
    state_file, output_dir = sys.argv[1:3]
    with open(state_file, encoding='utf-8') as handle:
        state = json.load(handle)
    # the tenant id is the one in tests/emulator/seeds/unrestricted.json
    fabrikam = EmulatorControl(state['control_url'], state['ca_bundle']).new_tenant(seed='unrestricted')
    hosts = {
        'contoso': dict(connection(state, state['demo']), **DESIRED['contoso']),
        'fabrikam': dict(connection(state, fabrikam), **DESIRED['fabrikam']),
    }
    inventory = {'tenants': {'hosts': hosts}}
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, 'inventory.yml')
    # JSON is YAML; the file holds the emulator's throw-away secrets, so only its owner may read it
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, 'w', encoding='utf-8') as handle:
        handle.write('# written by tests/harness/demo_inventory.py for `make demo` (emulator tenants; do not commit)\n')
        json.dump(inventory, handle, indent=2)
        handle.write('\n')
    print(path)


if __name__ == '__main__':
    main()
