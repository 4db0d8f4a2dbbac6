# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The device_join role's argument specs, defaults and tasks agree (the spec documents what the role reads)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROLE = Path(__file__).resolve().parents[3] / 'roles' / 'device_join'
# facts the role sets for its own use or as its result, not inputs
SET_BY_THE_ROLE = {'device_join_result', 'device_join_request', 'device_join_runner', 'device_join_tenant_key'}


def load(relative: str) -> dict:
    with open(ROLE / relative, encoding='utf-8') as handle:
        return yaml.safe_load(handle)


def options() -> dict:
    return load('meta/argument_specs.yml')['argument_specs']['main']['options']


def test_every_default_is_in_the_spec_with_the_same_value():
    defaults, spec = load('defaults/main.yml'), options()
    assert set(defaults) == {name for name, option in spec.items() if not option.get('required')}
    for name, value in defaults.items():
        assert spec[name].get('default') == value, name


def test_the_required_variable_has_no_default():
    spec = options()
    assert [name for name, option in spec.items() if option.get('required')] == ['device_join_allowed_to_join']
    assert 'device_join_allowed_to_join' not in load('defaults/main.yml')


def test_every_option_is_documented_and_typed():
    for name, option in options().items():
        assert option.get('description'), name
        assert option.get('type'), name
        if option['type'] == 'list':
            assert option.get('elements'), name


def test_the_tasks_read_only_documented_variables():
    text = '\n'.join(path.read_text(encoding='utf-8') for path in sorted((ROLE / 'tasks').glob('*.yml')))
    used = set(re.findall(r'(?<![\w.])device_join_[a-z_]+', text))
    assert used - SET_BY_THE_ROLE - set(options()) == set()
    assert set(options()) - used == set()  # and every documented variable is used


def test_every_task_is_tagged_for_autopilot_playbooks():
    tags = {'autopilot', 'autopilot_step2', 'entra_device_join'}
    for task in load('tasks/main.yml'):
        assert set(task.get('tags') or ()) == tags, task['name']
