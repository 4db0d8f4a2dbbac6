# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Error shapes: Graph's ``{"error": {...}}`` and Entra's OAuth ``{"error", "error_description", ...}``."""

from __future__ import annotations

import datetime
import uuid


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


class GraphFault(Exception):
    """A Graph error response: raised anywhere inside a Graph handler, turned into the Graph error body."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__('%d %s: %s' % (status, code, message))
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def graph_error_body(code: str, message: str, request_id: str, client_request_id: str) -> dict:
    return {
        'error': {
            'code': code,
            'message': message,
            'innerError': {
                'date': utc_now().strftime('%Y-%m-%dT%H:%M:%S'),
                'request-id': request_id,
                'client-request-id': client_request_id,
            },
        },
    }


class OAuthFault(Exception):
    """An Entra ID token endpoint error (AADSTS code in the description)."""

    def __init__(self, status: int, error: str, aadsts: int, description: str) -> None:
        super().__init__('AADSTS%d: %s' % (aadsts, description))
        self.status = status
        self.error = error
        self.aadsts = aadsts
        self.description = description

    def body(self, authority_host: str) -> dict:
        trace_id = str(uuid.uuid4())
        correlation_id = str(uuid.uuid4())
        timestamp = utc_now().strftime('%Y-%m-%d %H:%M:%SZ')
        return {
            'error': self.error,
            'error_description': 'AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s' % (
                self.aadsts, self.description, trace_id, correlation_id, timestamp),
            'error_codes': [self.aadsts],
            'timestamp': timestamp,
            'trace_id': trace_id,
            'correlation_id': correlation_id,
            'error_uri': '%s/error?code=%d' % (authority_host, self.aadsts),
        }
