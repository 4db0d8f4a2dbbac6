# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the entra.autopilot collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.

"""What one run of the device_join role changed (or would change, in check mode), in names a person reads.

Built on the controller from the registered results of the role's tasks: the read before (``*_info``), the
``entra_device_join_policy`` task, the ``entra_device_join_member`` task (additive mode) and the coverage read.
Pure: no I/O, so the audit report and its tests do not need Graph.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

# the settings besides the join scope that the role passes through, in the option names of the modules
OTHER_SETTINGS = ('user_device_quota', 'require_mfa', 'local_admins', 'laps_enabled')

_BOOL_TEXT = {True: 'yes', False: 'no'}
SCOPE_TEXT = {'all': 'All', 'selected': 'Selected', 'none': 'None'}  # as the Entra admin center names them


def _scope(scope: Any) -> str:
    return SCOPE_TEXT.get(str(scope), str(scope))


def _ran(result: Any) -> bool:
    """A registered result of a task that ran (not skipped, not absent)."""
    return isinstance(result, Mapping) and bool(result) and not result.get('skipped')


def _text(value: Any) -> str:
    if value is None:
        return 'not set'
    if isinstance(value, bool):
        return _BOOL_TEXT[value]
    if isinstance(value, (list, tuple)):
        return ', '.join(str(item) for item in value) or 'none'
    return str(value)


def _names_by_id(before: Mapping[str, Any]) -> dict[str, str]:
    """Names of the members of the list as read before the run (deleted objects marked)."""
    members = before.get('members') or {}
    names = {str(user.get('id')): str(user.get('user_principal_name') or user.get('id')) for user in members.get('users') or []}
    names.update({str(group.get('id')): str(group.get('display_name') or group.get('id')) for group in members.get('groups') or []})
    names.update({str(object_id): '%s (deleted)' % object_id for object_id in members.get('unresolved') or []})
    return names


def _counter_minus(first: Iterable[str], second: Iterable[str]) -> list[str]:
    # names may repeat (two groups called "Sales"), so compare as multisets
    return sorted((Counter(first) - Counter(second)).elements(), key=str.lower)


def _join_lists(config: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    if config.get('allowed_to_join') != 'selected':
        return [], []
    return list(config.get('users') or []), list(config.get('groups') or [])


def _member_changes(before: Mapping[str, Any], policy: Mapping[str, Any] | None, member: Mapping[str, Any] | None,
                    after_config: Mapping[str, Any]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Users and groups added to and removed from the Selected list, by name where the results have names."""
    add: dict[str, list[str]] = {'users': [], 'groups': []}
    remove: dict[str, list[str]] = {'users': [], 'groups': []}
    diff = policy.get('diff') if _ran(policy) and isinstance(policy.get('diff'), Mapping) else None
    if diff and after_config.get('allowed_to_join') == 'selected':
        for kind in ('users', 'groups'):
            old = diff['before'].get(kind) or [] if diff['before'].get('allowed_to_join') == 'selected' else []
            new = diff['after'].get(kind) or []
            add[kind] += _counter_minus(new, old)
            remove[kind] += _counter_minus(old, new)
    elif _ran(policy) and after_config.get('allowed_to_join') == 'selected':
        # no diff: ids, named from the read before where possible
        names = _names_by_id(before)
        old_users, old_groups = _join_lists(before.get('config') or {})
        new_users, new_groups = _join_lists(policy.get('config') or {})
        for kind, old, new in (('users', old_users, new_users), ('groups', old_groups, new_groups)):
            add[kind] += sorted(set(new) - set(old))
            remove[kind] += sorted((names.get(object_id, object_id) for object_id in set(old) - set(new)), key=str.lower)
    if _ran(member):
        for kind, key in (('users', 'user'), ('groups', 'group')):
            add[kind] += [str(entry.get('name') or entry.get('id')) for entry in member.get('added') or [] if entry.get('type') == key]
            remove[kind] += [str(entry.get('name') or '%s (deleted)' % entry.get('id')) for entry in member.get('removed') or []
                             if entry.get('type') == key]
    return add, remove


def _settings(before_config: Mapping[str, Any], policy: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """The other settings the run changed: one {setting, before, after} each, local administrators by name."""
    if not _ran(policy):
        return []
    diff = policy.get('diff') if isinstance(policy.get('diff'), Mapping) else None
    old = diff['before'] if diff else before_config
    new = diff['after'] if diff else policy.get('config') or {}
    changes = []
    for name in OTHER_SETTINGS:
        if name == 'local_admins':
            old_admins, new_admins = old.get(name) or {}, new.get(name) or {}
            for key in ('global_admins', 'registering_users', 'users', 'groups'):
                if old_admins.get(key) != new_admins.get(key):
                    changes.append({'setting': 'local_admins.%s' % key, 'before': _text(old_admins.get(key)),
                                    'after': _text(new_admins.get(key))})
        elif old.get(name) != new.get(name):
            changes.append({'setting': name, 'before': _text(old.get(name)), 'after': _text(new.get(name))})
    return changes


# what each host of a tenant may ask for on its own (the union is applied); everything else is one value per tenant
PER_HOST = ('users', 'groups', 'required_members')
PER_TENANT = ('allowed_to_join', 'membership', 'user_device_quota', 'require_mfa', 'local_admins', 'laps_enabled')


def merge_requests(requests: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """What the hosts of one tenant ask for together: the union of the per-host lists (first seen first), and
    ``conflicts``, the per-tenant settings on which the hosts disagree (variable names)."""
    requests = list(requests)
    merged: dict[str, Any] = {key: list(dict.fromkeys(str(item) for request in requests for item in request.get(key) or []))
                              for key in PER_HOST}
    merged['conflicts'] = ['device_join_%s' % key for key in PER_TENANT
                           if len({repr(request.get(key)) for request in requests}) > 1]
    return merged


def summarize(before: Mapping[str, Any] | None, policy: Mapping[str, Any] | None = None, member: Mapping[str, Any] | None = None,
              coverage: Mapping[str, Any] | None = None, **context: Any) -> dict[str, Any]:
    """The role's result: scope before and after, members added and removed, other settings changed, coverage.

    ``context`` is copied in as it is (tenant, host, scenario, membership, check_mode). In check mode "after" is what
    a real run would leave.
    """
    summary: dict[str, Any] = dict(context)
    before = before if _ran(before) else {}
    before_config = before.get('config') or {}
    after_config = before_config
    for result in (policy, member):
        if _ran(result) and isinstance(result.get('config'), Mapping):
            after_config = result['config']
    add, remove = _member_changes(before, policy, member, after_config)
    checked = coverage.get('coverage') if _ran(coverage) and isinstance(coverage.get('coverage'), Mapping) else None
    summary.update({
        'applies': True,
        'changed': any(_ran(result) and bool(result.get('changed')) for result in (policy, member)),
        'scope': {'before': before_config.get('allowed_to_join'), 'after': after_config.get('allowed_to_join')},
        'add': add,
        'remove': remove,
        'settings': _settings(before_config, policy),
        'config': dict(after_config),
        'required_members': [{'user': item.get('user'), 'covered': bool(item.get('covered')), 'via': item.get('via'),
                              'reason': item.get('reason')} for item in (checked or {}).get('users') or []],
        'uncovered': list((checked or {}).get('uncovered') or []),
        'warnings': sorted({str(warning) for result in (policy, member) if _ran(result) for warning in result.get('warnings') or []}),
    })
    summary['report'] = report_lines(summary)
    summary['uncovered_message'] = uncovered_message(summary)
    return summary


def report_lines(summary: Mapping[str, Any]) -> list[str]:
    """What the role prints: the scope, each kind of member added or removed, other settings, each required member."""
    check_mode = bool(summary.get('check_mode'))
    scope = summary['scope']
    first = '"Users may join devices to Microsoft Entra" %s %s' % ('would be' if check_mode else 'is', _scope(scope['after']))
    if scope['before'] != scope['after']:
        first += ' (was %s)' % _scope(scope['before'])
    if not summary['changed']:
        first += '; nothing %s' % ('would change' if check_mode else 'changed')
    lines = [first + '.']
    for key, done, would in (('add', 'Added', 'Would add'), ('remove', 'Removed', 'Would remove')):
        for kind in ('users', 'groups'):
            if summary[key][kind]:
                lines.append('%s %s: %s.' % (would if check_mode else done, kind, ', '.join(summary[key][kind])))
    for item in summary['settings']:
        lines.append('%s %s from %s to %s.' % ('Would change' if check_mode else 'Changed', item['setting'], item['before'], item['after']))
    lines += ['Required member %s %s' % (item['user'], item['reason']) for item in summary['required_members']]
    return lines


def uncovered_message(summary: Mapping[str, Any]) -> str:
    """The failure message naming every required member who cannot join, and why; empty when all can."""
    missing = [item for item in summary['required_members'] if not item['covered']]
    if not missing:
        return ''
    return ('%d of the %d required members cannot join devices to Microsoft Entra%s: %s. Add them, or a group they are in, to '
            'device_join_users or device_join_groups, or set device_join_allowed_to_join: all.'
            % (len(missing), len(summary['required_members']), ' once this run is applied (check mode)' if summary.get('check_mode') else '',
               '; '.join('%s %s' % (item['user'], str(item['reason']).rstrip('.')) for item in missing)))


def not_applicable(scenario: str, reason: str, **context: Any) -> dict[str, Any]:
    """The role's result for a scenario the setting does not apply to: nothing read, nothing changed."""
    summary: dict[str, Any] = dict(context, scenario=scenario)
    summary.update({'applies': False, 'changed': False, 'reason': reason, 'scope': {'before': None, 'after': None},
                    'add': {'users': [], 'groups': []}, 'remove': {'users': [], 'groups': []}, 'settings': [],
                    'config': {}, 'required_members': [], 'uncovered': [], 'warnings': [], 'report': [reason],
                    'uncovered_message': ''})
    return summary
