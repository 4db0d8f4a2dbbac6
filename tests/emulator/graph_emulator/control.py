# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A small stdlib client of the emulator's control API, for tests, the harness and benchmarks."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class EmulatorControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__('emulator control API: HTTP %d: %s' % (status, message))
        self.status = status


class EmulatorControl:
    """``EmulatorControl(state['control_url'], state['ca_bundle'])``"""

    def __init__(self, control_url: str, ca_bundle: str, timeout: float = 30) -> None:
        self.control_url = control_url.rstrip('/')
        self.ca_bundle = ca_bundle
        self.timeout = timeout
        self._context = ssl.create_default_context(cafile=ca_bundle)

    def _call(self, method: str, path: str, body: Any = None, query: dict | None = None) -> Any:
        url = self.control_url + path
        if query:
            url += '?' + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        data = json.dumps(body).encode('utf-8') if body is not None else None
        request = urllib.request.Request(url, data=data, method=method, headers={'Content-Type': 'application/json'})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self._context) as response:  # nosec - local https only
                return json.loads(response.read().decode('utf-8'))
        except urllib.error.HTTPError as error:
            text = error.read().decode('utf-8', 'replace')
            try:
                message = json.loads(text).get('error', text)
            except ValueError:
                message = text
            raise EmulatorControlError(error.code, message)

    @staticmethod
    def _quote(tenant_id: str) -> str:
        return urllib.parse.quote(tenant_id, safe='')

    def status(self) -> dict:
        return self._call('GET', '')

    def new_tenant(self, tenant_id: str | None = None, seed: str | None = 'demo', state: dict | None = None) -> dict:
        """Create (or replace) a tenant from a seed name or a state object; returns its credentials."""
        body: dict[str, Any] = {'state': state} if state is not None else {'seed': seed}
        if tenant_id:
            body['tenant_id'] = tenant_id
        return self._call('POST', '/tenants', body)

    def tenants(self) -> list[str]:
        return self._call('GET', '/tenants')

    def credentials(self, tenant_id: str) -> dict:
        return self._call('GET', '/tenants/%s' % self._quote(tenant_id))

    def delete_tenant(self, tenant_id: str) -> dict:
        return self._call('DELETE', '/tenants/%s' % self._quote(tenant_id))

    def reset(self, tenant_id: str) -> dict:
        return self._call('POST', '/tenants/%s/reset' % self._quote(tenant_id))

    def state(self, tenant_id: str) -> dict:
        return self._call('GET', '/tenants/%s/state' % self._quote(tenant_id))

    def policy(self, tenant_id: str) -> dict:
        return self._call('GET', '/tenants/%s/policy' % self._quote(tenant_id))

    def set_policy(self, tenant_id: str, policy: dict) -> dict:
        """Store a policy as-is (no PUT rules), to set up odd cases."""
        return self._call('PUT', '/tenants/%s/policy' % self._quote(tenant_id), policy)

    def token(self, tenant_id: str, client_id: str | None = None, expires_in: int | None = None, **extra: Any) -> str:
        """A Graph access token for an app or managed identity (extra: roles=[...], audience=...)."""
        body: dict[str, Any] = dict(extra)
        if client_id:
            body['client_id'] = client_id
        if expires_in is not None:
            body['expires_in'] = expires_in
        return self._call('POST', '/tenants/%s/token' % self._quote(tenant_id), body)['access_token']

    def federated_token(self, subject: str, expires_in: int = 3600, audience: str | None = None) -> str:
        """A workload identity token signed by the emulator's issuer (for federated credential tests)."""
        return self._call('POST', '/federated-token', {'subject': subject, 'expires_in': expires_in, 'audience': audience})['token']

    def log(self, tenant: str | None = None, since: int = 0) -> list[dict]:
        return self._call('GET', '/log', query={'tenant': tenant, 'since': since})

    def last_seq(self) -> int:
        """The seq of the newest log entry (pass it as `since` to see only what happens next)."""
        # from the status answer: the log itself can hold many thousand entries in a benchmark
        return int(self.status()['last_seq'])

    def clear_log(self) -> dict:
        return self._call('DELETE', '/log')

    def fault(self, **spec: Any) -> dict:
        """Inject a fault: path (regex), method, tenant, kind, status, count, retry_after, latency, drop, body."""
        return self._call('POST', '/faults', spec)

    def faults(self) -> list[dict]:
        return self._call('GET', '/faults')

    def clear_faults(self) -> dict:
        return self._call('DELETE', '/faults')

    def set_latency(self, seconds: float) -> dict:
        """Add ``seconds`` to every request (not to the control API): the modelled network round trip."""
        return self._call('PUT', '/settings', {'latency': seconds})
