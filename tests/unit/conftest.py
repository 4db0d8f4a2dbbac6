# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Shared unit-test fixtures: the Graph emulator (one per test session) and a fresh demo tenant per test.

``emulator``: the running emulator (``.state``, ``.url``, ``.ca_bundle``, ``.control``, ``.demo``).
``tenant``: the credentials of a new tenant made from the demo seed (same shape as ``emulator.state['demo']``).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any, Iterator

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


# ansible-test runs every test in a fork of its own (its ansible_forked plugin): a session fixture would be set up in
# each test's fork and never torn down, leaving one emulator behind per test. So the emulator is started in the
# process that forks (each xdist worker), before the first test, and stopped when that process's session ends.
_WORKER: dict[str, Any] = {}  # 'emulator': the RunningEmulator, 'workdir': its temp folder


def _runs_tests(config: pytest.Config) -> bool:
    """False for the xdist controller, which only hands tests out to its workers."""
    return hasattr(config, 'workerinput') or not getattr(config.option, 'numprocesses', None)


def pytest_sessionstart(session: pytest.Session) -> None:
    if _runs_tests(session.config):
        _WORKER['workdir'] = tempfile.mkdtemp(prefix='graph-emulator-')
        _WORKER['emulator'] = start_emulator(_WORKER['workdir'])


def pytest_sessionfinish(session: pytest.Session) -> None:  # pylint: disable=unused-argument
    if 'emulator' in _WORKER:
        _WORKER.pop('emulator').stop()
    if 'workdir' in _WORKER:
        shutil.rmtree(_WORKER.pop('workdir'), ignore_errors=True)


@pytest.fixture(scope='session')
def emulator() -> RunningEmulator:
    """The emulator of this test process (one per xdist worker), started before the first test."""
    return _WORKER['emulator']


@pytest.fixture
def tenant(emulator: RunningEmulator) -> Iterator[dict]:
    """A fresh tenant from the demo seed with a unique id; returns its credentials dict (deleted afterwards)."""
    credentials = emulator.control.new_tenant(str(uuid.uuid4()), seed='demo')
    yield credentials
    emulator.control.delete_tenant(credentials['tenant_id'])
