# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Shared unit-test fixtures: the Graph emulator (one per test session) and a fresh demo tenant per test.

``emulator``: the running emulator (``.state``, ``.url``, ``.ca_bundle``, ``.control``, ``.demo``).
``tenant``: the credentials of a new tenant made from the demo seed (same shape as ``emulator.state['demo']``).
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path
from typing import Iterator

import pytest

# tests/unit/conftest.py -> tests/emulator (works whatever the rootdir, including under ansible-test units)
EMULATOR_DIR = str(Path(__file__).resolve().parent.parent / 'emulator')
if EMULATOR_DIR not in sys.path:
    sys.path.insert(0, EMULATOR_DIR)

from graph_emulator.launcher import RunningEmulator, start_emulator  # noqa: E402

# requests lets these variables override every `verify=` (msal's too), so a developer shell that sets them would make
# emulator tests fail for the wrong reason. Tests pick their CA explicitly; a test may still set them with monkeypatch.
CA_OVERRIDES = ('REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE')


@pytest.fixture(scope='session', autouse=True)
def _no_ambient_ca_bundle() -> Iterator[None]:
    saved = {name: os.environ.pop(name) for name in CA_OVERRIDES if name in os.environ}
    yield
    os.environ.update(saved)


@pytest.fixture(scope='session')
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    """The emulator, started once per test session (per xdist worker) in a temp workdir, stopped at the end."""
    workdir = tmp_path_factory.mktemp('graph-emulator')
    running = start_emulator(str(workdir))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def tenant(emulator: RunningEmulator) -> Iterator[dict]:
    """A fresh tenant from the demo seed with a unique id; returns its credentials dict (deleted afterwards)."""
    credentials = emulator.control.new_tenant(str(uuid.uuid4()), seed='demo')
    yield credentials
    emulator.control.delete_tenant(credentials['tenant_id'])
