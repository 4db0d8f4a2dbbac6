# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Read the audit's HTML page as a browser would: print its table as JSON {tenant: {status, cells}} and what it loads.

Usage: python read_report.py device_join_audit.html
"""

from __future__ import annotations

import json
import sys
from html.parser import HTMLParser


class ReportTable(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.header: list[str] = []
        self.rows: dict[str, dict] = {}
        self.external: list[str] = []  # anything the page would fetch or run
        self.title = ''
        self._row: dict | None = None
        self._cell: list[str] | None = None
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = dict(attrs)
        if tag == 'script' or (tag == 'link' and attributes.get('href')) or attributes.get('src'):
            self.external.append(tag)
        if tag == 'title':
            self._in_title = True
        elif tag == 'tr':
            self._row = {'attrs': attributes, 'cells': []}
        elif tag in ('td', 'th'):
            self._cell = []
        elif tag == 'li' and self._cell:
            self._cell.append('; ')

    def handle_endtag(self, tag: str) -> None:
        if tag == 'title':
            self._in_title = False
        elif tag in ('td', 'th') and self._row is not None and self._cell is not None:
            self._row['cells'].append(' '.join(''.join(self._cell).split()))
            self._cell = None
        elif tag == 'tr' and self._row is not None:
            if 'data-tenant' in self._row['attrs']:
                self.rows[self._row['attrs']['data-tenant']] = {'status': self._row['cells'][1], 'cells': self._row['cells']}
            else:
                self.header = self._row['cells']
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._in_title:
            self.title += data


def main() -> None:
    parser = ReportTable()
    with open(sys.argv[1], encoding='utf-8') as handle:
        parser.feed(handle.read())
    parser.close()
    print(json.dumps({'title': parser.title, 'header': parser.header, 'rows': parser.rows, 'external': parser.external}))


if __name__ == '__main__':
    main()
