# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the entra.autopilot collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.

"""The device join audit report: one row per tenant, as JSON, Markdown and one self-contained HTML page.

``build_report`` turns what the audit playbook collected for each tenant (the device_join role's result in check
mode, or the error that stopped it) into rows; the renderers only format rows. Every string from the directory or
from an error goes through ``html.escape`` in HTML and through ``_md`` in Markdown; known secret values are replaced
everywhere before anything is rendered.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.entra.autopilot.plugins.plugin_utils._join_summary import SCOPE_TEXT

STATUSES = ('drifted', 'error', 'compliant', 'not_applicable')
STATUS_TEXT = {'compliant': 'Compliant', 'drifted': 'Drifted', 'error': 'Error', 'not_applicable': 'Not applicable'}
REDACTED = '********'
MIN_SECRET_LENGTH = 4  # shorter values would blank out ordinary words; no real secret is that short

NOT_AUDITED = ('The tenant was not audited: the host was unreachable or failed before the audit could record a result '
               '(see the play output above).')


def _scrub(value: Any, secrets: list[str]) -> Any:
    """``value`` with every secret replaced, in every string of nested dicts and lists."""
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, Mapping):
        return {str(_scrub(key, secrets)): _scrub(item, secrets) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(item, secrets) for item in value]
    return value


def _secret_values(secrets: Iterable[Any] | None) -> list[str]:
    values = {str(secret) for secret in secrets or () if secret is not None and len(str(secret)) >= MIN_SECRET_LENGTH}
    # longest first, so a secret that contains another is replaced as a whole
    return sorted(values, key=len, reverse=True)


def _row(entry: Mapping[str, Any]) -> dict[str, Any]:
    result = entry.get('result') if isinstance(entry.get('result'), Mapping) else None
    row: dict[str, Any] = {
        'tenant': str(entry.get('host') or ''),
        'tenant_id': entry.get('tenant_id') or None,
        'status': 'error',
        'scenario': None,
        'membership': None,
        'scope': {'actual': None, 'desired': None},
        'add': {'users': [], 'groups': []},
        'remove': {'users': [], 'groups': []},
        'settings': [],
        'required_members': [],
        'uncovered': [],
        'errors': [],
        'notes': [],
    }
    errors = [str(error) for error in entry.get('errors') or [] if error]
    if entry.get('error'):
        errors.insert(0, str(entry['error']))
    if result is None and not errors:
        errors.append(NOT_AUDITED)
    row['errors'] = errors
    if result is None:
        return row
    row.update({
        'scenario': result.get('scenario'),
        'membership': result.get('membership'),
        'scope': {'actual': (result.get('scope') or {}).get('before'), 'desired': (result.get('scope') or {}).get('after')},
        'add': {kind: list((result.get('add') or {}).get(kind) or []) for kind in ('users', 'groups')},
        'remove': {kind: list((result.get('remove') or {}).get(kind) or []) for kind in ('users', 'groups')},
        'settings': [{'setting': item.get('setting'), 'actual': item.get('before'), 'desired': item.get('after')}
                     for item in result.get('settings') or []],
        'required_members': list(result.get('required_members') or []),
        'uncovered': list(result.get('uncovered') or []),
        'notes': list(result.get('warnings') or []),
    })
    if not result.get('applies', True):
        row['notes'].insert(0, str(result.get('reason') or ''))
    if errors:
        row['status'] = 'error'
    elif not result.get('applies', True):
        row['status'] = 'not_applicable'
    elif result.get('changed') or row['uncovered']:
        row['status'] = 'drifted'
    else:
        row['status'] = 'compliant'
    return row


def build_report(entries: Iterable[Mapping[str, Any]] | Mapping[str, Any], generated: str = '', secrets: Iterable[Any] | None = None,
                 title: str = 'Microsoft Entra device join audit') -> dict[str, Any]:
    """The report: ``summary`` counts by status and ``tenants`` rows in the order given; secrets replaced.

    ``entries`` is a list of entries, or a mapping of host name to entry (an empty entry: the host recorded nothing).
    """
    if isinstance(entries, Mapping):
        entries = [dict(entry or {}, host=(entry or {}).get('host') or host) for host, entry in entries.items()]
    rows = [_row(entry) for entry in entries]
    summary = {'tenants': len(rows)}
    summary.update({status: sum(1 for row in rows if row['status'] == status) for status in STATUSES})
    report = {'title': title, 'generated': generated, 'summary': summary, 'tenants': rows}
    return _scrub(report, _secret_values(secrets))


# -- Markdown --------------------------------------------------------------------------------------------------------

# enough to keep a cell one cell and plain text: no emphasis, links, HTML or column breaks
_MD_SPECIAL = re.compile(r'([\\`*_\[\]<>|])')


def _md(value: Any) -> str:
    """Text for a Markdown table cell: special characters escaped, no line breaks."""
    text = ' '.join(str(value).split())
    return _MD_SPECIAL.sub(r'\\\1', text)


def _md_list(values: Iterable[Any]) -> str:
    return ', '.join(_md(value) for value in values) or '-'


def _members_text(members: Mapping[str, list[str]]) -> list[str]:
    return ['%s: %s' % (kind, ', '.join(str(name) for name in members[kind])) for kind in ('users', 'groups') if members.get(kind)]


def _scope_text(scope: Mapping[str, Any]) -> str:
    actual, desired = scope.get('actual'), scope.get('desired')
    if actual is None and desired is None:
        return '-'
    actual_text = SCOPE_TEXT.get(str(actual), str(actual or 'unknown'))
    if actual == desired:
        return actual_text
    return '%s, should be %s' % (actual_text, SCOPE_TEXT.get(str(desired), str(desired or 'unknown')))


def _settings_text(settings: Iterable[Mapping[str, Any]]) -> list[str]:
    return ['%s: %s, should be %s' % (item.get('setting'), item.get('actual'), item.get('desired')) for item in settings]


def _counts_text(summary: Mapping[str, Any]) -> str:
    return ('%d tenants: %d compliant, %d drifted, %d with errors, %d not applicable.'
            % (summary['tenants'], summary['compliant'], summary['drifted'], summary['error'], summary['not_applicable']))


def _required_text(row: Mapping[str, Any]) -> list[str]:
    return ['%s: %s' % (item.get('user'), item.get('reason')) for item in row.get('required_members') or [] if not item.get('covered')]


def to_markdown(report: Mapping[str, Any]) -> str:
    lines = ['# %s' % _md(report.get('title') or 'Device join audit'), '']
    if report.get('generated'):
        lines += ['Generated %s.' % _md(report['generated']), '']
    lines += [_counts_text(report['summary']), '']
    lines += ['| Tenant | Status | Scope | Members to add | Members to remove | Other settings that differ | Required members not covered | Errors |',
              '|---|---|---|---|---|---|---|---|']
    for row in report['tenants']:
        lines.append('| %s |' % ' | '.join([
            _md(row['tenant']), STATUS_TEXT[row['status']], _md(_scope_text(row['scope'])),
            _md_list(_members_text(row['add'])), _md_list(_members_text(row['remove'])),
            _md_list(_settings_text(row['settings'])), _md_list(_required_text(row)), _md_list(row['errors']),
        ]))
    notes = [(row['tenant'], note) for row in report['tenants'] for note in row.get('notes') or [] if note]
    if notes:
        lines += ['', '## Notes', '']
        lines += ['- %s: %s' % (_md(tenant), _md(note)) for tenant, note in notes]
    return '\n'.join(lines) + '\n'


# -- HTML ------------------------------------------------------------------------------------------------------------

_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 2rem; color: #1b1b1b; }
h1 { font-size: 1.5rem; margin-bottom: .25rem; }
p.meta { color: #555; margin-top: 0; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { border: 1px solid #d0d0d0; padding: .45rem .6rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
ul { margin: 0; padding-left: 1.1rem; }
.status { font-weight: 600; white-space: nowrap; }
tr.compliant .status { color: #0b6a0b; }
tr.drifted .status { color: #a4262c; }
tr.error .status { color: #8a3707; }
tr.not_applicable .status { color: #555; }
tr.drifted { background: #fdf3f4; }
tr.error { background: #fff8f0; }
.none { color: #777; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _cell(items: Iterable[Any]) -> str:
    items = [item for item in items if item not in (None, '')]
    if not items:
        return '<span class="none">-</span>'
    if len(items) == 1:
        return _e(items[0])
    return '<ul>%s</ul>' % ''.join('<li>%s</li>' % _e(item) for item in items)


def to_html(report: Mapping[str, Any]) -> str:
    title = report.get('title') or 'Device join audit'
    rows = []
    for row in report['tenants']:
        tenant = _e(row['tenant']) + ('<br><small>%s</small>' % _e(row['tenant_id']) if row.get('tenant_id') else '')
        rows.append('<tr class="%s" data-tenant="%s" data-status="%s"><td>%s</td><td class="status">%s</td><td>%s</td>'
                    '<td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>' % (
                        _e(row['status']), _e(row['tenant']), _e(row['status']), tenant, _e(STATUS_TEXT[row['status']]),
                        _cell([_scope_text(row['scope'])]), _cell(_members_text(row['add'])), _cell(_members_text(row['remove'])),
                        _cell(_settings_text(row['settings'])), _cell(_required_text(row)), _cell(list(row['errors']) + list(row.get('notes') or []))))
    generated = '<p class="meta">Generated %s</p>' % _e(report['generated']) if report.get('generated') else ''
    return '\n'.join([
        '<!DOCTYPE html>',
        '<html lang="en">',
        '<head>',
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<title>%s</title>' % _e(title),
        '<style>%s</style>' % _CSS,
        '</head>',
        '<body>',
        '<h1>%s</h1>' % _e(title),
        generated,
        '<p class="summary">%s</p>' % _e(_counts_text(report['summary'])),
        '<p class="meta">"Users may join devices to Microsoft Entra" (Autopilot step 2), audited against the desired state in the '
        'inventory. Nothing was changed.</p>',
        '<table>',
        '<thead><tr><th>Tenant</th><th>Status</th><th>Scope</th><th>Members to add</th><th>Members to remove</th>'
        '<th>Other settings that differ</th><th>Required members not covered</th><th>Errors and notes</th></tr></thead>',
        '<tbody>',
        *rows,
        '</tbody>',
        '</table>',
        '</body>',
        '</html>',
        '',
    ])


def render(report: Mapping[str, Any], output_format: str) -> Any:
    """The report as ``dict`` (itself), ``json``, ``markdown`` or ``html``."""
    if output_format == 'dict':
        return report
    if output_format == 'json':
        return json.dumps(report, indent=2, sort_keys=False) + '\n'
    if output_format == 'markdown':
        return to_markdown(report)
    if output_format == 'html':
        return to_html(report)
    raise ValueError('format must be one of dict, json, markdown, html, not %r' % (output_format,))
