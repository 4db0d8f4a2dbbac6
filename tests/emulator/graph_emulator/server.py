# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The HTTPS server and the dispatcher that routes each request to login, Graph or the control API."""

from __future__ import annotations

import json
import os
import socket
import ssl
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .control_api import ControlService
from .directory import StateError
from .errors import GraphFault, OAuthFault
from .graph import VERSIONS, Call, GraphService, error_response, fault_response
from .journal import FaultRegistry, RequestLog
from .login import LoginService
from .messages import Headers, Request, Response
from .pki import CertificateAuthority, SigningKey, write_private, write_public
from .tenants import Tenant, TenantContext, TenantRegistry
from .tokens import GRAPH_APP_ID, TokenService, WorkloadIssuer, unverified_claims

SEEDS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'seeds')


class Emulator:
    """Everything the emulator knows: tenants, keys, log, faults; and the HTTPS server in front of them."""

    def __init__(self, workdir: str, port: int = 0, token_lifetime: int = 3600, log_file: str | None = None,
                 latency: float = 0.0) -> None:
        self.workdir = os.path.abspath(workdir)
        # seconds added to every request but the control API's: the network round trip benchmarks model. One $batch
        # is one round trip, whatever it holds (faults add latency per item or request on top).
        self.latency = latency
        os.makedirs(self.workdir, exist_ok=True)
        ca = CertificateAuthority()
        self.ca_bundle = os.path.join(self.workdir, 'ca.pem')
        write_public(self.ca_bundle, ca.pem())
        chain, key = ca.issue_server_certificate(['127.0.0.1', 'localhost'])
        cert_path = os.path.join(self.workdir, 'server.pem')
        key_path = os.path.join(self.workdir, 'server-key.pem')
        write_public(cert_path, chain)
        write_private(key_path, key)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert_path, key_path)

        self.httpd = _Server(('127.0.0.1', port), _Handler)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True, do_handshake_on_connect=False)
        self.httpd.emulator = self
        self.port = self.httpd.server_address[1]
        self.base_url = 'https://127.0.0.1:%d' % self.port

        self.signing_key = SigningKey()
        self.workload_key = SigningKey()
        self.tokens = TokenService(self.signing_key, self.base_url)
        self.workload_issuer = WorkloadIssuer(self.workload_key, self.base_url + '/workload-issuer')
        self.tenant_context = TenantContext(self.workdir, lambda: self.base_url, self.ca_bundle, self.workload_issuer, token_lifetime)
        self.tenants = TenantRegistry()
        self.log = RequestLog(log_file)
        self.faults = FaultRegistry()
        self.login = LoginService(self)
        self.graph = GraphService(self)
        self.control = ControlService(self)
        self._thread: threading.Thread | None = None

    # -- addresses ----------------------------------------------------------------------------------------------

    def base_urls(self) -> list[str]:
        return [self.base_url, 'https://localhost:%d' % self.port]

    def base_for(self, request: Request) -> str:
        """The base URL the client used (127.0.0.1 or localhost), so links it gets back work for it."""
        host = request.headers.get('Host') or ''
        for base in self.base_urls():
            if urllib.parse.urlsplit(base).netloc == host:
                return base
        return self.base_url

    def graph_audiences(self, with_slash: bool = False) -> list[str]:
        audiences = self.base_urls() + [GRAPH_APP_ID]
        if with_slash:
            audiences += [base + '/' for base in self.base_urls()]
        return audiences

    # -- tenants ------------------------------------------------------------------------------------------------

    @staticmethod
    def load_seed(name: str) -> dict:
        """A seed by name (tests/emulator/seeds/<name>.json) or by path."""
        path = name if (os.sep in name or name.endswith('.json')) else os.path.join(SEEDS_DIR, name + '.json')
        if not os.path.isfile(path):
            available = sorted(entry[:-5] for entry in os.listdir(SEEDS_DIR) if entry.endswith('.json'))
            raise StateError('unknown seed %r (available: %s)' % (name, ', '.join(available)))
        with open(path, encoding='utf-8') as handle:
            seed = json.load(handle)
        if not isinstance(seed, dict):
            raise StateError('seed %s is not a JSON object' % path)
        return seed

    def create_tenant(self, tenant_id: str | None, state: dict) -> Tenant:
        """Create or replace a tenant from a seed/state; credentials of apps that already existed are kept."""
        tenant_id = tenant_id or (state.get('tenant') or {}).get('tenant_id') or str(uuid.uuid4())
        if not isinstance(tenant_id, str) or not tenant_id or '/' in tenant_id:
            raise StateError('tenant_id must be a non-empty string without "/"')
        tenant = Tenant(tenant_id, state, self.tenant_context, previous=self.tenants.get(tenant_id))
        self.tenants.put(tenant)
        return tenant

    # -- request handling ---------------------------------------------------------------------------------------

    def apply_fault(self, kind: str, tenant_id: str | None, request: Request, paths: tuple[str, ...]) -> Response | None:
        """Consume a matching fault: sleep its latency, then return its response (None: handle the request normally)."""
        candidates = tuple(paths) + tuple(urllib.parse.unquote(path) for path in paths)
        fault = self.faults.take(kind, tenant_id, request.method, candidates)
        if fault is None:
            return None
        if fault.latency:
            time.sleep(fault.latency)
        if fault.drop:
            return Response(0, drop=True)
        if fault.status is None:
            return None
        if kind in ('graph', 'batch-item'):
            return fault_response(fault.status, fault.body, fault.retry_after, request.request_id, request.client_request_id)
        body = fault.body
        if body is None:
            body = OAuthFault(fault.status, 'temporarily_unavailable' if fault.status in (429, 503, 504) else 'server_error', 90033,
                              'A transient error has occurred. Please try again.').body(self.base_url)
        headers = {'Retry-After': str(fault.retry_after)} if fault.retry_after is not None else None
        if isinstance(body, str):
            response = Response.text(fault.status, body)
            if headers:
                response.headers['Retry-After'] = headers['Retry-After']
            return response
        return Response.json_response(fault.status, body, headers=headers)

    def handle(self, request: Request) -> Response:
        path = request.path
        if path == '/_emulator' or path.startswith('/_emulator/'):
            return self.control.handle(request)
        started = time.time()
        if self.latency:
            time.sleep(self.latency)
        log: dict[str, Any] = {'time': started, 'tenant': None, 'kind': None, 'method': request.method, 'path': path,
                               'query': dict(request.query), 'request_id': request.request_id,
                               'client_request_id': request.client_request_id}
        response = self._dispatch(request, log)
        if log['kind'] is not None:
            log['status'] = 0 if response.drop else response.status
            log['duration'] = round(time.time() - started, 6)
            self.log.append(log)
        return response

    def _dispatch(self, request: Request, log: dict[str, Any]) -> Response:
        segments = request.path.strip('/').split('/')
        first = urllib.parse.unquote(segments[0]) if segments else ''
        if first in VERSIONS:
            return self._graph(request, first, log)
        if first == 'msi' and len(segments) == 3 and segments[2] == 'token':
            return self._login_kind('msi', request, segments[1], log, lambda: self.login.app_service(request, segments[1], log))
        if first == 'imds' and len(segments) >= 2 and '/'.join(segments[2:]) == 'metadata/identity/oauth2/token':
            return self._login_kind('msi', request, segments[1], log, lambda: self.login.imds(request, segments[1], log))
        tail = '/'.join(segments[1:])
        tenant_segment = urllib.parse.unquote(first)
        if tail == 'oauth2/v2.0/token':
            if request.method != 'POST':
                return self._oauth_error(OAuthFault(405, 'invalid_request', 900561,
                                                    'The endpoint only accepts POST requests. Received a %s request.' % request.method))
            return self._login_kind('token', request, tenant_segment, log, lambda: self.login.token(request, tenant_segment, log))
        discovery = {
            'v2.0/.well-known/openid-configuration': lambda: self.login.openid_configuration(request, tenant_segment),
            '.well-known/openid-configuration': lambda: self.login.openid_configuration(request, tenant_segment, v2=False),
            'discovery/instance': lambda: self.login.instance_discovery(request),
            'discovery/v2.0/keys': self.login.keys,
            'discovery/keys': self.login.keys,
        }
        if first == 'workload-issuer':
            discovery = {'.well-known/openid-configuration': self.login.workload_configuration, 'openid/v1/jwks': self.login.workload_keys}
        if tail in discovery and request.method == 'GET':
            return self._login_kind('discovery', request, tenant_segment, log, discovery[tail])
        return Response.json_response(404, {'error': 'not_found', 'error_description': 'The emulator has no endpoint %s %s.'
                                            % (request.method, request.path)})

    def _oauth_error(self, fault: OAuthFault) -> Response:
        return Response.json_response(fault.status, fault.body(self.base_url))

    def _login_kind(self, kind: str, request: Request, tenant_segment: str, log: dict[str, Any], answer: Any) -> Response:
        log['kind'] = kind
        tenant = self.tenants.find(tenant_segment)
        log['tenant'] = tenant.tenant_id if tenant else tenant_segment
        response = self.apply_fault(kind, log['tenant'], request, (request.path,))
        if response is not None:
            return response
        try:
            return answer()
        except OAuthFault as fault:
            return self._oauth_error(fault)

    def _graph(self, request: Request, version: str, log: dict[str, Any]) -> Response:
        log['kind'] = 'graph'
        relative = request.path[len(version) + 1:] or '/'
        header = request.headers.get('Authorization') or ''
        claims = unverified_claims(header.partition(' ')[2].strip()) if header else {}
        tenant_id = claims.get('tid') if isinstance(claims.get('tid'), str) else None
        log['tenant'] = tenant_id
        log['app_id'] = claims.get('appid')
        if request.method in ('POST', 'PUT', 'PATCH', 'DELETE') and request.body:
            try:
                log['body'] = request.json()
            except ValueError:
                log['body'] = request.body.decode('utf-8', 'replace')
        response = self.apply_fault('graph', tenant_id, request, (relative,))
        if response is not None:
            return response
        try:
            tenant, verified = self.graph.authenticate(request)
        except GraphFault as fault:
            return error_response(fault, request.request_id, request.client_request_id)
        call = Call(request, tenant, verified, version, self.base_for(request))
        if relative.strip('/') == '$batch':
            if request.method != 'POST':
                return error_response(GraphFault(405, 'Request_BadRequest', 'Specified HTTP method is not allowed for the request target.'),
                                      request.request_id, request.client_request_id)
            return self.graph.batch(call, log)
        return self.graph.handle(call, relative)

    # -- lifecycle ----------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={'poll_interval': 0.2}, name='graph-emulator', daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)
        self.log.close()  # after the server: no request is writing to it any more


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    emulator: Emulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        # TLS handshakes refused by clients that do not trust the CA, and dropped connections, are expected here.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'graph-emulator'
    sys_version = ''
    server: _Server

    def setup(self) -> None:
        self.request.settimeout(120)
        # headers and body go out as two TLS records: with Nagle's algorithm the second waits for the client's delayed
        # ACK (40 ms on Linux), a stall Graph does not have and that would dwarf the latency benchmarks model
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.request.do_handshake()
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:  # pylint: disable=redefined-builtin
        pass

    def _answer(self) -> None:
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length) if length > 0 else b''
        request = Request.from_target(self.command, self.path, Headers(self.headers.items()), body, str(uuid.uuid4()))
        try:
            response = self.server.emulator.handle(request)
        except Exception as error:  # a bug in the emulator: answer 500 instead of hanging the client
            response = error_response(GraphFault(500, 'InternalServerError', 'Emulator error: %r' % (error,)), request.request_id,
                                      request.client_request_id)
        if response.drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header('Content-Length', str(len(response.body)))
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _answer
