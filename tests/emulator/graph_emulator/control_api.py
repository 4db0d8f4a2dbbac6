# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The test control API under /_emulator (no auth: the server only listens on 127.0.0.1)."""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING, Any

from .directory import StateError
from .messages import Request, Response
from .tokens import TOKEN_EXCHANGE_AUDIENCE

if TYPE_CHECKING:
    from .server import Emulator


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ControlService:
    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    def handle(self, request: Request) -> Response:
        try:
            return Response.json_response(200, self._route(request))
        except ControlError as error:
            return Response.json_response(error.status, {'error': str(error)})
        except StateError as error:
            return Response.json_response(400, {'error': str(error)})

    @staticmethod
    def _body(request: Request) -> Any:
        if not request.body:
            return {}
        try:
            return request.json()
        except ValueError:
            raise ControlError(400, 'the body is not JSON')

    def _tenant(self, tenant_id: str) -> Any:
        tenant = self.emulator.tenants.get(tenant_id)
        if tenant is None:
            raise ControlError(404, 'no tenant %s (tenants: %s)' % (tenant_id, ', '.join(self.emulator.tenants.ids())))
        return tenant

    def _route(self, request: Request) -> Any:
        emulator = self.emulator
        parts = [urllib.parse.unquote(part) for part in request.path.strip('/').split('/')[1:]]
        method = request.method
        if not parts and method == 'GET':
            # last_seq here lets clients take a log mark without fetching the whole log
            return {'status': 'ready', 'url': emulator.base_url, 'tenants': emulator.tenants.ids(), 'last_seq': emulator.log.last_seq}
        head = parts[0] if parts else ''
        if head == 'tenants':
            return self._tenants(request, parts[1:])
        if head == 'log' and len(parts) == 1:
            if method == 'GET':
                try:
                    since = int(request.query.get('since') or 0)
                except ValueError:
                    raise ControlError(400, 'since must be an integer')
                return emulator.log.entries(request.query.get('tenant') or None, since)
            if method == 'DELETE':
                emulator.log.clear()
                return {'cleared': True, 'last_seq': emulator.log.last_seq}
        if head == 'faults' and len(parts) == 1:
            if method == 'POST':
                body = self._body(request)
                if not isinstance(body, dict):
                    raise ControlError(400, 'a fault is a JSON object')
                try:
                    return emulator.faults.add(body).describe()
                except ValueError as error:
                    raise ControlError(400, str(error))
            if method == 'GET':
                return emulator.faults.describe()
            if method == 'DELETE':
                emulator.faults.clear()
                return {'cleared': True}
        if head == 'settings' and len(parts) == 1 and method in ('GET', 'PUT'):
            if method == 'PUT':
                body = self._body(request)
                latency = body.get('latency', emulator.latency) if isinstance(body, dict) else None
                if isinstance(latency, bool) or not isinstance(latency, (int, float)) or not 0 <= latency <= 60:
                    raise ControlError(400, 'expected {"latency": <seconds from 0 to 60>}')
                emulator.latency = float(latency)
            return {'latency': emulator.latency}
        if head == 'federated-token' and len(parts) == 1 and method == 'POST':
            body = self._body(request)
            subject = body.get('subject')
            if not isinstance(subject, str) or not subject:
                raise ControlError(400, 'subject is required')
            token = emulator.workload_issuer.mint(subject, body.get('audience') or TOKEN_EXCHANGE_AUDIENCE, int(body.get('expires_in', 3600)))
            return {'token': token, 'issuer': emulator.workload_issuer.issuer}
        raise ControlError(404, 'no control endpoint %s %s' % (method, request.path))

    def _tenants(self, request: Request, parts: list[str]) -> Any:
        emulator = self.emulator
        method = request.method
        if not parts:
            if method == 'GET':
                return emulator.tenants.ids()
            if method == 'POST':
                body = self._body(request)
                if not isinstance(body, dict):
                    raise ControlError(400, 'expected {"tenant_id": ..., "seed": "demo"} or {"tenant_id": ..., "state": {...}}')
                if ('seed' in body) == ('state' in body):
                    raise ControlError(400, 'give exactly one of "seed" (a seed name) and "state" (a state object)')
                state = emulator.load_seed(str(body['seed'])) if 'seed' in body else body['state']
                if not isinstance(state, dict):
                    raise ControlError(400, '"state" must be an object')
                return emulator.create_tenant(body.get('tenant_id'), state).credentials()
            raise ControlError(405, 'use GET or POST on /_emulator/tenants')
        tenant = self._tenant(parts[0])
        action = parts[1] if len(parts) > 1 else ''
        if len(parts) > 2:
            raise ControlError(404, 'no control endpoint %s %s' % (method, request.path))
        if action == '' and method == 'GET':
            return tenant.credentials()
        if action == '' and method == 'DELETE':
            emulator.tenants.remove(tenant.tenant_id)
            return {'deleted': tenant.tenant_id}
        if action == 'reset' and method == 'POST':
            tenant.reset()
            return tenant.to_state()
        if action == 'state' and method == 'GET':
            return tenant.to_state()
        if action == 'policy' and method == 'PUT':
            body = self._body(request)
            if not isinstance(body, dict):
                raise ControlError(400, 'the policy is a JSON object')
            tenant.replace_policy(body)
            return tenant.read_policy()
        if action == 'policy' and method == 'GET':
            return tenant.read_policy()
        if action == 'token' and method == 'POST':
            return self._token(tenant, self._body(request))
        raise ControlError(404, 'no control endpoint %s %s' % (method, request.path))

    def _token(self, tenant: Any, body: Any) -> dict:
        if not isinstance(body, dict):
            raise ControlError(400, 'expected {"client_id": ..., "expires_in": 3600}')
        client_id = body.get('client_id') or tenant.credentials().get('client_id')
        principal = tenant.find_principal(str(client_id))
        if principal is None:
            raise ControlError(404, 'no app or managed identity %s in tenant %s' % (client_id, tenant.tenant_id))
        if 'roles' in body:
            principal = type(principal)(**dict(vars(principal), permissions=list(body['roles'])))
        expires_in = int(body.get('expires_in', tenant.token_lifetime))
        audience = body.get('audience') or self.emulator.base_url
        token, exp = self.emulator.tokens.issue(tenant.tenant_id, principal, audience, expires_in,
                                                'managed_identity' if principal.kind == 'managed_identity' else 'secret')
        return {'access_token': token, 'token_type': 'Bearer', 'expires_in': expires_in, 'expires_on': exp}
