# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The audit report: rows and statuses, secrets replaced everywhere, escaping in HTML (parsed back) and Markdown."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.entra.autopilot.plugins.filter.device_join import FilterModule
from ansible_collections.entra.autopilot.plugins.plugin_utils._audit_report import NOT_AUDITED, REDACTED, build_report, render

SECRET = 'emu~S3cr3t<value>&"quoted"'


def result(**overrides):
    value = {'applies': True, 'changed': False, 'scenario': 'pre_provisioned', 'membership': 'additive',
             'scope': {'before': 'selected', 'after': 'selected'}, 'add': {'users': [], 'groups': []},
             'remove': {'users': [], 'groups': []}, 'settings': [], 'required_members': [], 'uncovered': [], 'warnings': []}
    value.update(overrides)
    return value


DRIFTED = result(changed=True, add={'users': ['<script>alert(1)</script>@contoso.com'], 'groups': ["O'Reilly Project Team"]},
                 remove={'users': ['845f4493-b41a-4e1b-8640-d31c1282cb20 (deleted)'], 'groups': []},
                 settings=[{'setting': 'user_device_quota', 'before': '50', 'after': '20'}],
                 required_members=[{'user': 'PattiF@contoso.com', 'covered': False, 'via': None,
                                    'reason': 'cannot join: not in the Selected list.'}],
                 uncovered=['PattiF@contoso.com'])

ENTRIES = {
    'contoso': {'host': 'contoso', 'tenant_id': 'b1e0d2a3-ab23-4060-90d0-8229f25d57b1', 'result': DRIFTED},
    'fabrikam': {'host': 'fabrikam', 'tenant_id': '0d6c0c1e-5a2f-4f0b-9a61-3b7f2e8c4d15',
                 'result': result(scope={'before': 'all', 'after': 'all'})},
    'northwind': {'host': 'northwind', 'error': 'AADSTS7000215: Invalid client secret provided: ' + SECRET},
    'tailspin': {},
    'kiosk': {'host': 'kiosk', 'result': result(applies=False, reason='Nothing was changed: self-deploying.')},
}


def report(**kwargs):
    return build_report(ENTRIES, generated='2026-01-02T03:04:05+00:00', secrets=[SECRET, '', None, 'abc'], **kwargs)


def test_rows_and_statuses():
    built = report()
    assert built['summary'] == {'tenants': 5, 'drifted': 1, 'error': 2, 'compliant': 1, 'not_applicable': 1}
    rows = {row['tenant']: row for row in built['tenants']}
    assert list(rows) == ['contoso', 'fabrikam', 'northwind', 'tailspin', 'kiosk']
    assert rows['contoso']['status'] == 'drifted'
    assert rows['contoso']['scope'] == {'actual': 'selected', 'desired': 'selected'}
    assert rows['contoso']['settings'] == [{'setting': 'user_device_quota', 'actual': '50', 'desired': '20'}]
    assert rows['fabrikam']['status'] == 'compliant'
    assert rows['tailspin']['status'] == 'error' and rows['tailspin']['errors'] == [NOT_AUDITED]
    assert rows['kiosk']['status'] == 'not_applicable' and rows['kiosk']['notes'] == ['Nothing was changed: self-deploying.']


def test_uncovered_members_alone_are_drift():
    built = build_report([{'host': 'a', 'result': result(uncovered=['x@contoso.com'])}])
    assert built['tenants'][0]['status'] == 'drifted'


def test_secrets_are_replaced_everywhere():
    built = report()
    text = json.dumps(built)
    assert json.dumps(SECRET)[1:-1] not in text and 'S3cr3t' not in text  # the secret as JSON writes it
    northwind = [row for row in built['tenants'] if row['tenant'] == 'northwind'][0]
    assert northwind['errors'] == ['AADSTS7000215: Invalid client secret provided: ' + REDACTED]
    for output_format in ('json', 'markdown', 'html'):
        rendered = render(built, output_format)
        assert 'S3cr3t' not in rendered
    # values too short to be secrets are not replaced (they would blank out ordinary words)
    assert build_report([{'host': 'a', 'error': 'abc def'}], secrets=['abc'])['tenants'][0]['errors'] == ['abc def']


def test_a_secret_inside_another_is_replaced_whole():
    built = build_report([{'host': 'a', 'error': 'got longsecret-value'}], secrets=['longsecret', 'longsecret-value'])
    assert built['tenants'][0]['errors'] == ['got ' + REDACTED]


class TableParser(HTMLParser):
    """Rows of the report's table as lists of cell texts, with the row's attributes; and the page title."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[dict, list[str]]] = []
        self._cell: list[str] | None = None
        self.title = ''
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        if tag == 'tr':
            self.rows.append((dict(attrs), []))
        elif tag in ('td', 'th'):
            self._cell = []
        elif tag == 'li' and self._cell:
            self._cell.append('; ')
        elif tag == 'title':
            self._in_title = True

    def handle_endtag(self, tag):
        if tag in ('td', 'th') and self._cell is not None:
            self.rows[-1][1].append(' '.join(''.join(self._cell).split()))
            self._cell = None
        elif tag == 'title':
            self._in_title = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._in_title:
            self.title += data


def test_html_is_one_page_with_a_row_per_tenant_and_escaped_text():
    page = render(report(), 'html')
    assert page.startswith('<!DOCTYPE html>')
    assert '<script' not in page and '<link' not in page and 'src=' not in page  # nothing to fetch, nothing run
    parser = TableParser()
    parser.feed(page)
    assert parser.title == 'Microsoft Entra device join audit'
    header, *rows = parser.rows
    assert header[1][:3] == ['Tenant', 'Status', 'Scope']
    by_tenant = {attrs['data-tenant']: cells for attrs, cells in rows}
    assert list(by_tenant) == ['contoso', 'fabrikam', 'northwind', 'tailspin', 'kiosk']
    contoso = by_tenant['contoso']
    assert contoso[1] == 'Drifted'
    assert contoso[2] == 'Selected'
    # the text comes back exactly as it was: escaped on the way in, unescaped by the parser
    assert contoso[3] == "users: <script>alert(1)</script>@contoso.com; groups: O'Reilly Project Team"
    assert contoso[4] == 'users: 845f4493-b41a-4e1b-8640-d31c1282cb20 (deleted)'
    assert contoso[5] == 'user_device_quota: 50, should be 20'
    assert contoso[6] == 'PattiF@contoso.com: cannot join: not in the Selected list.'
    assert by_tenant['fabrikam'][1] == 'Compliant' and by_tenant['fabrikam'][2] == 'All'
    assert by_tenant['northwind'][1] == 'Error' and REDACTED in by_tenant['northwind'][7]
    assert by_tenant['tailspin'][7] == NOT_AUDITED
    assert '1 compliant, 1 drifted, 2 with errors, 1 not applicable' in page


def test_markdown_keeps_cells_and_escapes():
    text = render(report(), 'markdown')
    lines = text.splitlines()
    table = [line for line in lines if line.startswith('| ')]
    assert len(table) == 6  # header and five tenants
    contoso = [line for line in table if line.startswith('| contoso |')][0]
    assert contoso.count(' | ') == 7  # eight cells: no "|" from the data breaks the table
    assert '\\<script\\>' in contoso and 'Drifted' in contoso
    assert '## Notes' in text and 'self-deploying' in text


def test_json_round_trips():
    assert json.loads(render(report(), 'json')) == report()


def test_filter_formats_and_errors():
    device_join_report = FilterModule().filters()['device_join_report']
    assert device_join_report(list(ENTRIES.values())[:2])['summary']['tenants'] == 2
    assert device_join_report(ENTRIES, 'html').startswith('<!DOCTYPE html>')
    with pytest.raises(AnsibleFilterError, match='format must be one of'):
        device_join_report(ENTRIES, 'pdf')
    with pytest.raises(AnsibleFilterError, match='expects a list'):
        device_join_report('contoso')
