# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Start and stop the emulator as a subprocess (used by the unit-test fixtures, the harness and benchmarks)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

from .control import EmulatorControl

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class RunningEmulator:
    """A started emulator: `.state` (the state file), `.url`, `.ca_bundle`, `.control`, `.stop()`."""

    def __init__(self, process: subprocess.Popen, state_file: str, state: dict[str, Any]) -> None:
        self.process = process
        self.state_file = state_file
        self.state = state
        self.url: str = state['url']
        self.ca_bundle: str = state['ca_bundle']
        self.control = EmulatorControl(state['control_url'], state['ca_bundle'])

    @property
    def demo(self) -> dict:
        return self.state['demo']

    def stop(self, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        return self.process.returncode

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def start_emulator(workdir: str, state_file: str | None = None, seed: str = 'demo', python: str | None = None,
                   timeout: float = 60, extra_args: list[str] | None = None) -> RunningEmulator:
    """Run ``python -m graph_emulator`` and wait until it has written its state file."""
    state_file = state_file or os.path.join(workdir, 'state.json')
    if os.path.exists(state_file):
        os.unlink(state_file)
    env = dict(os.environ)
    env['PYTHONPATH'] = PACKAGE_PARENT + (os.pathsep + env['PYTHONPATH'] if env.get('PYTHONPATH') else '')
    output = open(os.path.join(workdir, 'emulator.out'), 'ab')  # pylint: disable=consider-using-with
    command = [python or sys.executable, '-m', 'graph_emulator', '--state-file', state_file, '--workdir', workdir, '--seed', seed,
               '--exit-with-parent']
    process = subprocess.Popen(command + list(extra_args or []), env=env, stdout=output, stderr=subprocess.STDOUT,  # pylint: disable=consider-using-with
                               stdin=subprocess.DEVNULL, cwd=workdir)
    output.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(state_file):
            with open(state_file, encoding='utf-8') as handle:
                return RunningEmulator(process, state_file, json.load(handle))
        if process.poll() is not None:
            with open(os.path.join(workdir, 'emulator.out'), encoding='utf-8', errors='replace') as handle:
                raise RuntimeError('the emulator exited with %s before it was ready:\n%s' % (process.returncode, handle.read()[-4000:]))
        time.sleep(0.05)
    process.kill()
    raise RuntimeError('the emulator did not write %s within %s seconds' % (state_file, timeout))
