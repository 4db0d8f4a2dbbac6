# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Tenants: directory + policy + app registrations + managed identities, and the credentials made for them."""

from __future__ import annotations

import copy
import os
import re
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from typing import Callable

from .directory import DEFAULT_POLICY, Directory, StateError, is_guid
from .pki import AppCertificate, write_private
from .tokens import TOKEN_EXCHANGE_AUDIENCE, Principal, WorkloadIssuer


@dataclass
class FederatedCredential:
    subject: str
    issuer: str              # the emulator's workload issuer unless the state names another
    audiences: list[str]


@dataclass
class AppRegistration:
    principal: Principal
    has_secret: bool
    has_certificate: bool
    federated: list[FederatedCredential]
    # generated material
    secret: str | None = None
    certificate: AppCertificate | None = None
    files: dict[str, str] = field(default_factory=dict)


class Tenant:
    """One emulated tenant. Directory objects are replaced as a whole; the policy is read and written under `lock`."""

    def __init__(self, tenant_id: str, origin: dict, context: TenantContext, previous: Tenant | None = None) -> None:
        self.tenant_id = tenant_id
        self.origin = copy.deepcopy(origin)
        self.context = context
        self.lock = threading.Lock()
        info = origin.get('tenant') or {}
        self.display_name = info.get('display_name') or 'Contoso'
        # Domains belong to the tenant the seed describes; copies under other ids answer to their id only.
        same_tenant = str(info.get('tenant_id') or '').lower() == tenant_id.lower()
        self.domains = [str(d).lower() for d in info.get('domains') or []] if same_tenant else []
        self.token_lifetime = int(info.get('token_lifetime') or context.token_lifetime)
        self.identity_header = previous.identity_header if previous else secrets.token_urlsafe(24)
        self.apps: dict[str, AppRegistration] = {}
        self.identities: dict[str, Principal] = {}
        self._load_principals(origin, previous)
        self.directory: Directory
        self.policy: dict
        self.intune_enabled: bool
        self._load_data(origin)

    # -- state --------------------------------------------------------------------------------------------------

    def _load_data(self, state: dict) -> None:
        directory = Directory(state)
        policy = state.get('policy')
        if policy is None:
            policy = copy.deepcopy(DEFAULT_POLICY)
        if not isinstance(policy, dict):
            raise StateError('"policy" must be an object')
        info = state.get('tenant') or {}
        with self.lock:
            self.directory = directory
            self.policy = copy.deepcopy(policy)
            self.intune_enabled = bool(info.get('intune_enabled', False))

    def reset(self) -> None:
        self._load_data(self.origin)

    def read_policy(self) -> dict:
        with self.lock:
            return copy.deepcopy(self.policy)

    def update_policy(self, change: Callable[[dict, Directory, bool], dict]) -> dict:
        """Apply one PUT atomically (each request on its own; clients' read-modify-write sequences are not serialised)."""
        with self.lock:
            new_policy = change(copy.deepcopy(self.policy), self.directory, self.intune_enabled)
            self.policy = new_policy
            return copy.deepcopy(new_policy)

    def replace_policy(self, policy: dict) -> None:
        with self.lock:
            self.policy = copy.deepcopy(policy)

    def to_state(self) -> dict:
        with self.lock:
            state = self.directory.to_state()
            state['policy'] = copy.deepcopy(self.policy)
            intune = self.intune_enabled
        tenant_info = dict(self.origin.get('tenant') or {})
        tenant_info.update({'tenant_id': self.tenant_id, 'intune_enabled': intune})
        result = {'tenant': tenant_info}
        result.update(state)
        result['apps'] = copy.deepcopy(self.origin.get('apps') or [])
        result['managed_identities'] = copy.deepcopy(self.origin.get('managed_identities') or [])
        return result

    # -- principals ---------------------------------------------------------------------------------------------

    def _load_principals(self, state: dict, previous: Tenant | None) -> None:
        for spec in state.get('apps') or []:
            if not isinstance(spec, dict) or not is_guid(spec.get('client_id')):
                raise StateError('every app needs a "client_id" GUID: %r' % (spec,))
            creds = spec.get('credentials') or {}
            principal = Principal(kind='app', name=spec.get('name') or spec['client_id'], client_id=spec['client_id'],
                                  object_id=spec.get('object_id') or str(uuid.uuid5(uuid.NAMESPACE_OID, spec['client_id'])),
                                  display_name=spec.get('display_name') or spec.get('name') or 'app',
                                  permissions=list(spec.get('permissions') or []))
            federated = [FederatedCredential(subject=item['subject'], issuer=item.get('issuer') or self.context.workload_issuer.issuer,
                                             audiences=list(item.get('audiences') or [TOKEN_EXCHANGE_AUDIENCE]))
                         for item in creds.get('federated') or []]
            app = AppRegistration(principal, bool(creds.get('secret', True)), bool(creds.get('certificate')), federated)
            old = previous.apps.get(principal.client_id.lower()) if previous else None
            self._make_credentials(app, old)
            self.apps[principal.client_id.lower()] = app
        for spec in state.get('managed_identities') or []:
            if not isinstance(spec, dict) or not is_guid(spec.get('client_id')):
                raise StateError('every managed identity needs a "client_id" GUID: %r' % (spec,))
            kind = spec.get('type', 'UserAssigned')
            if kind not in ('SystemAssigned', 'UserAssigned'):
                raise StateError('managed identity type must be SystemAssigned or UserAssigned: %r' % (spec,))
            name = spec.get('name') or spec['client_id']
            resource_id = '/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/contoso-automation/providers/'
            if kind == 'UserAssigned':
                resource_id += 'Microsoft.ManagedIdentity/userAssignedIdentities/%s' % name
            else:
                resource_id += 'Microsoft.Compute/virtualMachines/%s' % name
            self.identities[spec['client_id'].lower()] = Principal(
                kind='managed_identity', name=name, client_id=spec['client_id'],
                object_id=spec.get('object_id') or str(uuid.uuid5(uuid.NAMESPACE_OID, spec['client_id'])),
                display_name=spec.get('display_name') or name, permissions=list(spec.get('permissions') or []),
                identity_type=kind, resource_id=spec.get('resource_id') or resource_id)

    def _make_credentials(self, app: AppRegistration, old: AppRegistration | None) -> None:
        folder = os.path.join(self.context.workdir, 'tenants', _safe(self.tenant_id), _safe(app.principal.name))
        os.makedirs(folder, exist_ok=True)
        if app.has_secret:
            app.secret = old.secret if old and old.secret else 'emu~' + secrets.token_urlsafe(30)
        if app.has_certificate:
            app.certificate = self.context.certificate_for(app.principal.client_id, app.principal.display_name)
            if old and old.files.get('certificate_path'):
                app.files = dict(old.files)
            else:
                password = secrets.token_urlsafe(12)
                app.files = {
                    'certificate_path': os.path.join(folder, 'app.pem'),
                    'encrypted_certificate_path': os.path.join(folder, 'app-encrypted.pem'),
                    'pfx_path': os.path.join(folder, 'app.pfx'),
                    'pfx_password': password,
                    'certificate_thumbprint': app.certificate.sha1_hex,
                }
                write_private(app.files['certificate_path'], app.certificate.pem())
                write_private(app.files['encrypted_certificate_path'], app.certificate.pem(password))
                write_private(app.files['pfx_path'], app.certificate.pfx(password))
        if app.federated:
            path = os.path.join(folder, 'federated-token.jwt')
            write_private(path, self.context.workload_issuer.mint(app.federated[0].subject).encode('ascii'))
            app.files['federated_token_file'] = path
            app.files['federated_subject'] = app.federated[0].subject

    def origin_app(self, client_id: str) -> dict:
        """The app's entry in the seed/state (flags such as disabled or secret_expired)."""
        for spec in self.origin.get('apps') or []:
            if str(spec.get('client_id', '')).lower() == client_id.lower():
                return spec
        return {}

    def find_principal(self, client_id: str) -> Principal | None:
        app = self.apps.get(client_id.lower())
        if app:
            return app.principal
        return self.identities.get(client_id.lower())

    def managed_identity(self, client_id: str | None = None, object_id: str | None = None, resource_id: str | None = None) -> Principal | None:
        for identity in self.identities.values():
            if client_id and identity.client_id.lower() == client_id.lower():
                return identity
            if object_id and identity.object_id.lower() == object_id.lower():
                return identity
            if resource_id and identity.resource_id.lower() == resource_id.lower():
                return identity
        if client_id or object_id or resource_id:
            return None
        return next((identity for identity in self.identities.values() if identity.identity_type == 'SystemAssigned'), None)

    # -- credentials handed to tests ----------------------------------------------------------------------------

    def credentials(self) -> dict:
        base = self.context.base_url
        apps = {}
        for app in self.apps.values():
            entry = {'client_id': app.principal.client_id, 'display_name': app.principal.display_name,
                     'permissions': list(app.principal.permissions)}
            if app.secret:
                entry['client_secret'] = app.secret
            entry.update(app.files)
            apps[app.principal.name] = entry
        main = apps.get('automation') or next(iter(apps.values()), {})
        readonly = apps.get('readonly') or {}
        user_assigned = next((i for i in self.identities.values() if i.identity_type == 'UserAssigned'), None)
        system_assigned = next((i for i in self.identities.values() if i.identity_type == 'SystemAssigned'), None)
        result = {
            'tenant_id': self.tenant_id,
            'authority_host': base,
            'graph_endpoint': base,
            'ca_bundle': self.context.ca_bundle,
            'client_id': main.get('client_id'),
            'client_secret': main.get('client_secret'),
            'certificate_path': main.get('certificate_path'),
            'encrypted_certificate_path': main.get('encrypted_certificate_path'),
            'pfx_path': main.get('pfx_path'),
            'pfx_password': main.get('pfx_password'),
            'certificate_thumbprint': main.get('certificate_thumbprint'),
            'federated_token_file': main.get('federated_token_file'),
            'readonly_client_id': readonly.get('client_id'),
            'readonly_client_secret': readonly.get('client_secret'),
            'unregistered_certificate_path': self.context.unregistered_certificate_path(),
            'managed_identity': {
                'identity_endpoint': '%s/msi/%s/token' % (base, self.tenant_id),
                'identity_header': self.identity_header,
                'imds_host': '%s/imds/%s' % (base, self.tenant_id),
                'system_assigned_client_id': system_assigned.client_id if system_assigned else None,
                'user_assigned_client_id': user_assigned.client_id if user_assigned else None,
                'user_assigned_object_id': user_assigned.object_id if user_assigned else None,
            },
            'apps': apps,
        }
        return result


def _safe(name: str) -> str:
    return re.sub(r'[^A-Za-z0-9._-]', '_', name)[:80] or '_'


class TenantContext:
    """What tenants need from the running emulator: workdir, URLs, issuers, certificate cache."""

    def __init__(self, workdir: str, base_url: Callable[[], str], ca_bundle: str, workload_issuer: WorkloadIssuer,
                 token_lifetime: int) -> None:
        self.workdir = workdir
        self._base_url = base_url
        self.ca_bundle = ca_bundle
        self.workload_issuer = workload_issuer
        self.token_lifetime = token_lifetime
        self._certificates: dict[str, AppCertificate] = {}
        self._lock = threading.Lock()
        self._unregistered: str | None = None

    @property
    def base_url(self) -> str:
        return self._base_url()

    def certificate_for(self, client_id: str, display_name: str) -> AppCertificate:
        # RSA key generation is the slow part of creating a tenant, so apps with the same client id share one.
        with self._lock:
            if client_id.lower() not in self._certificates:
                self._certificates[client_id.lower()] = AppCertificate.generate(display_name)
            return self._certificates[client_id.lower()]

    def unregistered_certificate_path(self) -> str:
        """A valid certificate no app trusts (for 'key not found' tests)."""
        with self._lock:
            if self._unregistered is None:
                path = os.path.join(self.workdir, 'unregistered-app.pem')
                write_private(path, AppCertificate.generate('Not registered anywhere').pem())
                self._unregistered = path
            return self._unregistered


class TenantRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tenants: dict[str, Tenant] = {}

    def put(self, tenant: Tenant) -> None:
        with self._lock:
            self._tenants[tenant.tenant_id.lower()] = tenant

    def get(self, tenant_id: str | None) -> Tenant | None:
        if not tenant_id:
            return None
        with self._lock:
            return self._tenants.get(tenant_id.lower())

    def find(self, name: str) -> Tenant | None:
        """By tenant id or one of its domains (as login URLs allow)."""
        tenant = self.get(name)
        if tenant:
            return tenant
        with self._lock:
            return next((t for t in self._tenants.values() if name.lower() in t.domains), None)

    def remove(self, tenant_id: str) -> bool:
        with self._lock:
            return self._tenants.pop(tenant_id.lower(), None) is not None

    def ids(self) -> list[str]:
        with self._lock:
            return [tenant.tenant_id for tenant in self._tenants.values()]
