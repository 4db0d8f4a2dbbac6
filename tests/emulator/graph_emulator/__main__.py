# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""``python -m graph_emulator --state-file PATH [--port 0] [--seed demo] [--workdir DIR] [--latency S] [--exit-with-parent]``"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
from typing import Any

from . import __version__
from .directory import StateError
from .server import Emulator


def write_atomically(path: str, data: dict) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix='.state-', dir=folder)
    with os.fdopen(handle, 'w', encoding='utf-8') as stream:
        json.dump(data, stream, indent=2, sort_keys=True)
        stream.write('\n')
    os.chmod(temp, 0o600)  # it holds the demo credentials
    os.replace(temp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='graph_emulator', description='Local Microsoft Entra ID + Microsoft Graph emulator for entra.autopilot.')
    parser.add_argument('--state-file', required=True, help='where to write URLs, CA bundle and demo credentials once the server is ready')
    parser.add_argument('--port', type=int, default=0, help='port on 127.0.0.1 (default: a free one)')
    parser.add_argument('--seed', default='demo', help='seed of the default tenant: a name in tests/emulator/seeds or a path (default: demo)')
    parser.add_argument('--tenant-id', help="id of the default tenant (default: the seed's tenant id)")
    parser.add_argument('--workdir', help='folder for the CA, certificates, credentials and request log (default: a new temp folder)')
    parser.add_argument('--token-lifetime', type=int, default=3600, help='access token lifetime in seconds (default: 3600)')
    parser.add_argument('--latency', type=float, default=0.0, help='seconds added to every request, to model the network (default: 0)')
    parser.add_argument('--exit-with-parent', action='store_true',
                        help='stop when the process that started it ends, even if it was killed before it could stop the emulator')
    args = parser.parse_args(argv)
    # read before the slow start-up (seeding, TLS): a parent that dies meanwhile is then still noticed
    parent = os.getppid()

    workdir = args.workdir or tempfile.mkdtemp(prefix='graph-emulator-')
    try:
        emulator = Emulator(workdir, port=args.port, token_lifetime=args.token_lifetime, log_file=os.path.join(workdir, 'requests.jsonl'),
                            latency=args.latency)
        tenant = emulator.create_tenant(args.tenant_id, emulator.load_seed(args.seed))
    except (StateError, OSError, ValueError) as error:
        print('graph_emulator: %s' % error, file=sys.stderr)
        return 2

    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    emulator.start()
    state = {
        'pid': os.getpid(),
        'version': __version__,
        'url': emulator.base_url,
        'ca_bundle': emulator.ca_bundle,
        'authority_host': emulator.base_url,
        'graph_endpoint': emulator.base_url,
        'control_url': emulator.base_url + '/_emulator',
        'workdir': emulator.workdir,
        'request_log': os.path.join(emulator.workdir, 'requests.jsonl'),
        'demo': tenant.credentials(),
    }
    write_atomically(args.state_file, state)
    print('graph_emulator %s ready at %s (tenant %s); state file %s' % (__version__, emulator.base_url, tenant.tenant_id, args.state_file),
          flush=True)
    while not stop.wait(0.5):
        if args.exit_with_parent and os.getppid() != parent:
            break  # orphaned: whoever started it (a test run, the harness) is gone
    emulator.stop()
    print('graph_emulator stopped; files kept in %s' % emulator.workdir, flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
