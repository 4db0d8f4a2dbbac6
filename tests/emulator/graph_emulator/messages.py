# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Transport-neutral request and response objects, so `$batch` items go through the same handlers as requests."""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any


class Headers:
    """Case-insensitive header lookup that keeps the original names."""

    def __init__(self, items: Any = None) -> None:
        self._items: dict[str, tuple[str, str]] = {}
        if items:
            pairs = items.items() if hasattr(items, 'items') else items
            for name, value in pairs:
                self[name] = value

    def __setitem__(self, name: str, value: Any) -> None:
        self._items[name.lower()] = (name, str(value))

    def get(self, name: str, default: str | None = None) -> str | None:
        item = self._items.get(name.lower())
        return item[1] if item else default

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def items(self) -> list[tuple[str, str]]:
        return list(self._items.values())

    def as_dict(self) -> dict[str, str]:
        return dict(self._items.values())


@dataclass
class Request:
    method: str
    path: str               # as sent, percent-encoded, without the query
    query: dict[str, str]   # decoded; last value wins
    headers: Headers
    body: bytes = b''
    request_id: str = ''

    @classmethod
    def from_target(cls, method: str, target: str, headers: Headers, body: bytes = b'', request_id: str = '') -> Request:
        parsed = urllib.parse.urlsplit(target)
        query = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
        return cls(method.upper(), parsed.path, query, headers, body, request_id)

    @property
    def decoded_path(self) -> str:
        return urllib.parse.unquote(self.path)

    @property
    def client_request_id(self) -> str:
        return self.headers.get('client-request-id') or self.headers.get('x-ms-client-request-id') or ''

    def json(self) -> Any:
        """The parsed body; ValueError when it is not JSON."""
        return json.loads(self.body.decode('utf-8'))


@dataclass
class Response:
    status: int
    headers: Headers = field(default_factory=Headers)
    body: bytes = b''
    drop: bool = False      # close the connection without answering (fault injection)
    json_body: Any = None   # the parsed body, kept for $batch items and the log

    @classmethod
    def json_response(cls, status: int, payload: Any, content_type: str = 'application/json; charset=utf-8',
                      headers: dict[str, str] | None = None) -> Response:
        response = cls(status, Headers(headers or {}), json.dumps(payload).encode('utf-8'), json_body=payload)
        response.headers['Content-Type'] = content_type
        return response

    @classmethod
    def text(cls, status: int, text: str, content_type: str = 'text/plain; charset=utf-8') -> Response:
        response = cls(status, Headers(), text.encode('utf-8'), json_body=text)
        response.headers['Content-Type'] = content_type
        return response
