# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The emulator's modelled network latency (control API /settings): once per request, a $batch is one round trip."""

from __future__ import annotations

import time

import pytest
from graph_emulator.control import EmulatorControlError
from graph_emulator.testing import DEMO_IDS

LATENCY = 0.3


@pytest.fixture
def slow(emulator):
    assert emulator.control.set_latency(LATENCY) == {'latency': LATENCY}
    yield
    emulator.control.set_latency(0)


def timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_every_request_pays_the_latency_once_and_a_batch_is_one_round_trip(graph, slow):
    response, seconds = timed(lambda: graph.get('users/' + DEMO_IDS['adele']))
    assert response.status_code == 200 and seconds >= LATENCY
    items = [{'id': str(index), 'method': 'GET', 'url': '/users/' + DEMO_IDS['adele']} for index in range(20)]
    response, seconds = timed(lambda: graph.post('$batch', json={'requests': items}))
    assert response.status_code == 200 and {item['status'] for item in response.json()['responses']} == {200}
    assert LATENCY <= seconds < 5 * LATENCY  # not 20 round trips


def test_the_control_api_is_not_slowed_and_checks_its_input(emulator, slow):
    _answer, seconds = timed(emulator.control.status)
    assert seconds < LATENCY
    for bad in (-1, 61, 'fast', True):
        with pytest.raises(EmulatorControlError, match='latency'):
            emulator.control.set_latency(bad)
    assert emulator.control.set_latency(0) == {'latency': 0.0}
