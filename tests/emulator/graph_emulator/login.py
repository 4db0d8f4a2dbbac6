# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Entra ID login: OIDC discovery, the v2 token endpoint (client credentials) and the managed identity endpoints."""

from __future__ import annotations

import base64
import hmac
import time
import urllib.parse
from typing import TYPE_CHECKING

import jwt
from cryptography import x509

from .directory import is_guid
from .errors import OAuthFault
from .messages import Request, Response
from .tokens import Principal

if TYPE_CHECKING:
    from .server import Emulator
    from .tenants import AppRegistration, Tenant

JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
GENERIC_TENANTS = ('common', 'organizations', 'consumers')


def _iso(epoch: float) -> str:
    return time.strftime('%m/%d/%Y %H:%M:%S', time.gmtime(epoch))


def _missing(name: str) -> OAuthFault:
    return OAuthFault(400, 'invalid_request', 900144, "The request body must contain the following parameter: '%s'." % name)


class LoginService:
    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    # -- discovery ----------------------------------------------------------------------------------------------

    def openid_configuration(self, request: Request, segment: str, v2: bool = True) -> Response:
        base = self.emulator.base_for(request)
        if segment.lower() in GENERIC_TENANTS:
            issuer_tenant = '{tenantid}'
        else:
            tenant = self._tenant(segment, discovery=True)
            issuer_tenant = tenant.tenant_id
        prefix = '%s/%s' % (base, segment)
        host = urllib.parse.urlsplit(base).netloc
        return Response.json_response(200, {
            'token_endpoint': '%s/oauth2/v2.0/token' % prefix,
            'token_endpoint_auth_methods_supported': ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
            'jwks_uri': '%s/discovery/v2.0/keys' % prefix,
            'response_modes_supported': ['query', 'fragment', 'form_post'],
            'subject_types_supported': ['pairwise'],
            'id_token_signing_alg_values_supported': ['RS256'],
            'response_types_supported': ['code', 'id_token', 'code id_token', 'id_token token'],
            'scopes_supported': ['openid', 'profile', 'email', 'offline_access'],
            'issuer': ('%s/%s/v2.0' % (base, issuer_tenant)) if v2 else ('%s/%s/' % (base, issuer_tenant)),
            'request_uri_parameter_supported': False,
            'userinfo_endpoint': '%s/oidc/userinfo' % base,
            'authorization_endpoint': '%s/oauth2/v2.0/authorize' % prefix,
            'device_authorization_endpoint': '%s/oauth2/v2.0/devicecode' % prefix,
            'http_logout_supported': True,
            'frontchannel_logout_supported': True,
            'end_session_endpoint': '%s/oauth2/v2.0/logout' % prefix,
            'claims_supported': ['sub', 'iss', 'cloud_instance_name', 'cloud_instance_host_name', 'cloud_graph_host_name', 'msgraph_host',
                                 'aud', 'exp', 'iat', 'auth_time', 'acr', 'nonce', 'preferred_username', 'name', 'tid', 'ver', 'at_hash',
                                 'c_hash', 'email'],
            'tenant_region_scope': 'EU',
            'cloud_instance_name': host,
            'cloud_graph_host_name': host,
            'msgraph_host': host,
            'rbac_url': base,
        })

    def instance_discovery(self, request: Request) -> Response:
        base = self.emulator.base_for(request)
        endpoint = request.query.get('authorization_endpoint', '')
        segments = [s for s in urllib.parse.urlsplit(endpoint).path.split('/') if s]
        tenant = segments[0] if segments else 'common'
        aliases = [urllib.parse.urlsplit(alias).netloc for alias in self.emulator.base_urls()]
        return Response.json_response(200, {
            'tenant_discovery_endpoint': '%s/%s/v2.0/.well-known/openid-configuration' % (base, tenant),
            'api-version': '1.1',
            'metadata': [{'preferred_network': aliases[0], 'preferred_cache': aliases[0], 'aliases': aliases}],
        })

    def keys(self) -> Response:
        return Response.json_response(200, {'keys': [self.emulator.signing_key.jwk()]})

    def workload_keys(self) -> Response:
        return Response.json_response(200, {'keys': [self.emulator.workload_key.jwk()]})

    def workload_configuration(self) -> Response:
        issuer = self.emulator.workload_issuer.issuer
        return Response.json_response(200, {'issuer': issuer, 'jwks_uri': issuer + '/openid/v1/jwks', 'response_types_supported': ['id_token'],
                                            'subject_types_supported': ['public'], 'id_token_signing_alg_values_supported': ['RS256']})

    # -- token endpoint -----------------------------------------------------------------------------------------

    def _tenant(self, segment: str, discovery: bool = False) -> Tenant:
        tenant = self.emulator.tenants.find(segment)
        if tenant:
            return tenant
        if not is_guid(segment) and '.' not in segment:
            raise OAuthFault(400, 'invalid_request', 900023,
                             "Specified tenant identifier '%s' is neither a valid DNS name, nor a valid external domain." % segment)
        raise OAuthFault(400, 'invalid_tenant' if discovery else 'invalid_request', 90002,
                         "Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. "
                         "Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
                         % segment)

    def token(self, request: Request, segment: str, log: dict) -> Response:
        content_type = (request.headers.get('Content-Type') or '').lower()
        form: dict[str, str] = {}
        if 'application/x-www-form-urlencoded' in content_type:
            form = dict(urllib.parse.parse_qsl(request.body.decode('utf-8', 'replace'), keep_blank_values=True))
        if segment.lower() in GENERIC_TENANTS:
            raise OAuthFault(400, 'invalid_request', 50059,
                             'No tenant-identifying information found in either the request or implied by any provided credentials.')
        tenant = self._tenant(segment)
        log['tenant'] = tenant.tenant_id
        grant_type = form.get('grant_type')
        if not grant_type:
            raise _missing('grant_type')
        if grant_type != 'client_credentials':
            raise OAuthFault(400, 'unsupported_grant_type', 70003, "The app requested an unsupported grant type '%s'." % grant_type)
        client_id = form.get('client_id')
        if not client_id:
            raise _missing('client_id')
        log['client_id'] = client_id
        scope = form.get('scope')
        if not scope:
            raise _missing('scope')
        app = tenant.apps.get(client_id.lower())
        if app is None:
            raise OAuthFault(400, 'unauthorized_client', 700016,
                             "Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has "
                             "not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have "
                             "sent your authentication request to the wrong tenant." % (client_id, tenant.display_name))
        if tenant.origin_app(client_id).get('disabled'):
            raise OAuthFault(400, 'unauthorized_client', 7000112, "Application '%s'(%s) is disabled." % (client_id, app.principal.display_name))
        credential = self._authenticate_client(form, tenant, app, segment)
        log['credential'] = credential
        audience = self._resource_from_scope(scope, tenant)
        lifetime = tenant.token_lifetime
        token, _exp = self.emulator.tokens.issue(tenant.tenant_id, app.principal, audience, lifetime, credential)
        return Response.json_response(200, {'token_type': 'Bearer', 'expires_in': max(lifetime - 1, 0), 'ext_expires_in': max(lifetime - 1, 0),
                                            'access_token': token})

    def _resource_from_scope(self, scope: str, tenant: Tenant) -> str:
        scopes = [item for item in scope.split() if item]
        defaults = [item for item in scopes if item.endswith('/.default')]
        if len(defaults) != 1 or len(scopes) != 1:
            raise OAuthFault(400, 'invalid_scope', 1002012,
                             "The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default "
                             "suffixed to the resource identifier (application ID URI)." % scope)
        resource = defaults[0][:-len('/.default')].rstrip('/')
        if resource not in self.emulator.graph_audiences():
            raise OAuthFault(400, 'invalid_resource', 500011,
                             "The resource principal named %s was not found in the tenant named %s. This can happen if the application has "
                             "not been installed by the administrator of the tenant or consented to by any user in the tenant. You might "
                             "have sent your authentication request to the wrong tenant." % (resource, tenant.display_name))
        return resource

    def _authenticate_client(self, form: dict[str, str], tenant: Tenant, app: AppRegistration, segment: str) -> str:
        secret = form.get('client_secret')
        assertion = form.get('client_assertion')
        if secret and assertion:
            raise OAuthFault(400, 'invalid_request', 9002313,
                             'Invalid request. Request is malformed or invalid. Only one of client_secret and client_assertion may be sent.')
        if secret:
            if not app.secret or not hmac.compare_digest(secret.encode('utf-8'), app.secret.encode('utf-8')):
                raise OAuthFault(401, 'invalid_client', 7000215,
                                 "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not "
                                 "the client secret ID, for a secret added to app '%s'." % app.principal.client_id)
            if tenant.origin_app(app.principal.client_id).get('credentials', {}).get('secret_expired'):
                raise OAuthFault(401, 'invalid_client', 7000222,
                                 "The provided client secret keys for app '%s' are expired. Visit the Azure portal to create new keys for "
                                 "your app." % app.principal.client_id)
            return 'secret'
        if assertion:
            assertion_type = form.get('client_assertion_type')
            if not assertion_type:
                raise _missing('client_assertion_type')
            if assertion_type != JWT_BEARER:
                raise OAuthFault(400, 'invalid_request', 9002313,
                                 "Invalid request. Request is malformed or invalid. The client_assertion_type '%s' is not supported."
                                 % assertion_type)
            try:
                header = jwt.get_unverified_header(assertion)
                claims = jwt.decode(assertion, options={'verify_signature': False})
            except jwt.PyJWTError:
                raise OAuthFault(400, 'invalid_request', 50027, 'JWT token is invalid or malformed.')
            if claims.get('iss') == app.principal.client_id:
                self._check_certificate_assertion(assertion, header, claims, tenant, app, segment)
                return 'certificate'
            self._check_federated_assertion(assertion, claims, app)
            return 'federated'
        raise OAuthFault(401, 'invalid_client', 7000216,
                         "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.")

    def _check_certificate_assertion(self, assertion: str, header: dict, claims: dict, tenant: Tenant,
                                     app: AppRegistration, segment: str) -> None:
        client_id = app.principal.client_id
        cert = app.certificate
        sha1 = header.get('x5t')
        sha256 = header.get('x5t#S256')
        presented = (sha1 or sha256 or '').rstrip('=')
        known = cert is not None and ((sha1 and presented == cert.x5t) or (sha256 and presented == cert.x5t_s256))
        if cert is None or not known:
            try:
                thumbprint = base64.urlsafe_b64decode(presented + '=' * (-len(presented) % 4)).hex().upper()
            except ValueError:
                thumbprint = presented
            raise OAuthFault(401, 'invalid_client', 700027,
                             "Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by "
                             "client: '%s', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys "
                             "for app Id '%s'.]" % (thumbprint, client_id))
        public_key = x509.load_der_x509_certificate(cert.der).public_key()
        try:
            jwt.decode(assertion, public_key, algorithms=['RS256', 'PS256'],  # type: ignore[arg-type]
                       options={'verify_aud': False, 'verify_exp': False, 'verify_nbf': False, 'verify_iat': False, 'verify_iss': False})
        except jwt.PyJWTError:
            raise OAuthFault(401, 'invalid_client', 700027, 'Client assertion failed signature validation.')
        if claims.get('sub') != client_id:
            raise OAuthFault(401, 'invalid_client', 700021, "Client assertion application identifier doesn't match 'client_id' parameter.")
        audiences = claims.get('aud')
        audiences = audiences if isinstance(audiences, list) else [audiences]
        expected = {'%s/%s/oauth2/v2.0/token' % (base, name) for base in self.emulator.base_urls()
                    for name in [segment, tenant.tenant_id] + tenant.domains}
        if not any(isinstance(aud, str) and aud.rstrip('/') in expected for aud in audiences):
            raise OAuthFault(401, 'invalid_client', 50012, 'Client assertion audience claim does not match Realm issuer.')
        self._check_lifetime(claims)

    @staticmethod
    def _check_lifetime(claims: dict) -> None:
        now = time.time()
        exp = claims.get('exp')
        nbf = claims.get('nbf', claims.get('iat', 0))
        if not isinstance(exp, (int, float)):
            raise OAuthFault(400, 'invalid_request', 50027, 'JWT token is invalid or malformed: the exp claim is missing.')
        if exp <= now or (isinstance(nbf, (int, float)) and nbf > now + 300):
            raise OAuthFault(401, 'invalid_client', 700024,
                             'Client assertion is not within its valid time range. Current time: %s, assertion valid from %s, expiry time '
                             'of assertion %s.' % (_iso(now), _iso(nbf if isinstance(nbf, (int, float)) else 0), _iso(exp)))

    def _check_federated_assertion(self, assertion: str, claims: dict, app: AppRegistration) -> None:
        issuer = claims.get('iss')
        subject = claims.get('sub')
        audiences = claims.get('aud')
        audiences = audiences if isinstance(audiences, list) else [audiences]
        record = next((cred for cred in app.federated
                       if cred.issuer == issuer and cred.subject == subject and any(aud in cred.audiences for aud in audiences)), None)
        if record is None:
            raise OAuthFault(400, 'invalid_request', 70021,
                             "No matching federated identity record found for presented assertion. Assertion Issuer: '%s'. Assertion "
                             "Subject: '%s'. Assertion Audience: '%s'." % (issuer, subject, ','.join(str(a) for a in audiences)))
        if issuer != self.emulator.workload_issuer.issuer:
            raise OAuthFault(400, 'invalid_request', 50166, "Request to External OIDC endpoint failed: issuer '%s' is not reachable." % issuer)
        try:
            jwt.decode(assertion, self.emulator.workload_key.public_key, algorithms=['RS256'],
                       options={'verify_aud': False, 'verify_exp': False, 'verify_nbf': False, 'verify_iat': False})
        except jwt.PyJWTError:
            raise OAuthFault(401, 'invalid_client', 700027, 'Client assertion failed signature validation.')
        self._check_lifetime(claims)

    # -- managed identity ---------------------------------------------------------------------------------------

    def _identity(self, tenant: Tenant, request: Request) -> Principal | None:
        return tenant.managed_identity(client_id=request.query.get('client_id'), object_id=request.query.get('object_id') or
                                       request.query.get('principal_id'),
                                       resource_id=request.query.get('mi_res_id') or request.query.get('msi_res_id'))

    def _mi_audience(self, resource: str) -> str | None:
        resource = resource.rstrip('/')
        if resource.endswith('/.default'):
            resource = resource[:-len('/.default')].rstrip('/')
        return resource if resource in self.emulator.graph_audiences() else None

    def app_service(self, request: Request, segment: str, log: dict) -> Response:
        """App Service / Functions style endpoint: IDENTITY_ENDPOINT + IDENTITY_HEADER."""
        def fail(status: int, message: str) -> Response:
            return Response.json_response(status, {'statusCode': status, 'message': message, 'correlationId': request.request_id})

        tenant = self.emulator.tenants.get(segment)
        if tenant is None:
            return fail(404, 'No managed identity endpoint for %s.' % segment)
        log['tenant'] = tenant.tenant_id
        header = request.headers.get('X-IDENTITY-HEADER')
        if not header or not hmac.compare_digest(header.encode('utf-8'), tenant.identity_header.encode('utf-8')):
            return fail(401, 'The X-IDENTITY-HEADER header is missing or has the wrong value.')
        if not request.query.get('api-version'):
            return fail(400, "Required query variable 'api-version' is missing.")
        resource = request.query.get('resource')
        if not resource:
            return fail(400, "Required query variable 'resource' is missing.")
        identity = self._identity(tenant, request)
        if identity is None:
            return fail(400, 'No User Assigned or Delegated Managed Identity found for specified ClientId/ResourceId/PrincipalId.')
        log['client_id'] = identity.client_id
        audience = self._mi_audience(resource)
        if audience is None:
            return fail(500, 'An unexpected error occured while fetching the AAD Token.')
        token, exp = self.emulator.tokens.issue(tenant.tenant_id, identity, audience, tenant.token_lifetime, 'managed_identity')
        return Response.json_response(200, {'access_token': token, 'expires_on': str(exp), 'resource': resource, 'token_type': 'Bearer',
                                            'client_id': identity.client_id})

    def imds(self, request: Request, segment: str, log: dict) -> Response:
        """Azure VM instance metadata service (reached through AZURE_POD_IDENTITY_AUTHORITY_HOST)."""
        def fail(status: int, error: str, description: str) -> Response:
            return Response.json_response(status, {'error': error, 'error_description': description})

        tenant = self.emulator.tenants.get(segment)
        if tenant is None:
            return fail(404, 'invalid_request', 'No instance metadata service for %s.' % segment)
        log['tenant'] = tenant.tenant_id
        if (request.headers.get('Metadata') or '').lower() != 'true':
            return fail(400, 'invalid_request', 'Required metadata header not specified')
        if not request.query.get('api-version'):
            return fail(400, 'invalid_request', "Required query variable 'api-version' is missing")
        resource = request.query.get('resource')
        if not resource:
            return fail(400, 'invalid_request', "Required query variable 'resource' is missing")
        identity = self._identity(tenant, request)
        if identity is None:
            return fail(400, 'invalid_request', 'Identity not found')
        log['client_id'] = identity.client_id
        audience = self._mi_audience(resource)
        if audience is None:
            return fail(400, 'invalid_resource', 'AADSTS500011: The resource principal named %s was not found in the tenant named %s.'
                        % (resource, tenant.display_name))
        lifetime = tenant.token_lifetime
        token, exp = self.emulator.tokens.issue(tenant.tenant_id, identity, audience, lifetime, 'managed_identity')
        return Response.json_response(200, {'access_token': token, 'client_id': identity.client_id, 'expires_in': str(lifetime - 1),
                                            'expires_on': str(exp), 'ext_expires_in': str(lifetime - 1), 'not_before': str(exp - lifetime),
                                            'resource': resource, 'token_type': 'Bearer'})
