# Copyright (c) entra.autopilot contributors
# Simplified BSD License (see LICENSES/BSD-2-Clause.txt or https://opensource.org/licenses/BSD-2-Clause)
# SPDX-License-Identifier: BSD-2-Clause

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the entra.autopilot collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.

"""Connection settings, the HTTP session and token acquisition with msal.

``settings_from_params`` turns module parameters into validated ``AuthSettings`` without any I/O,
``build_session`` creates the one ``requests`` session of a run (TLS trust, timeouts),
``acquire_token`` gets a Microsoft Graph access token for the configured auth method (from the persistent token cache
of ``_token_cache.py`` when ``token_cache`` is on).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import re
import tempfile
import traceback
import typing as t
from contextlib import nullcontext
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ansible_collections.entra.autopilot.plugins.module_utils._errors import EntraError
from ansible_collections.entra.autopilot.plugins.module_utils._token_cache import credential_fingerprint, open_token_cache

try:
    import requests
    import urllib3
except ImportError:
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR: str | None = traceback.format_exc()
    _SessionBase: t.Any = object
else:
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
    _SessionBase = requests.Session

try:
    import msal
    import msal.exceptions
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import pkcs12
except ImportError:
    HAS_MSAL = False
    MSAL_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    HAS_MSAL = True
    MSAL_IMPORT_ERROR = None

COLLECTION_VERSION = '0.1.0'
USER_AGENT = f'entra.autopilot/{COLLECTION_VERSION}'

# msal logs request and response details at DEBUG level (and, in a few places, raw endpoint payloads that can hold
# a token). Nothing a module run configures should ever print them.
_MSAL_LOGGER = logging.getLogger('msal')
_MSAL_LOGGER.addHandler(logging.NullHandler())
_MSAL_LOGGER.setLevel(logging.CRITICAL + 1)
_MSAL_LOGGER.propagate = False

METHODS = ('client_secret', 'client_certificate', 'workload_identity', 'managed_identity', 'access_token')
API_VERSIONS = ('v1.0', 'beta')


@dataclass(frozen=True)
class Cloud:
    login: str
    graph: str


# https://learn.microsoft.com/en-us/graph/deployments
CLOUDS = {
    'public': Cloud(login='https://login.microsoftonline.com', graph='https://graph.microsoft.com'),
    'usgov': Cloud(login='https://login.microsoftonline.us', graph='https://graph.microsoft.us'),
    'usgov_dod': Cloud(login='https://login.microsoftonline.us', graph='https://dod-graph.microsoft.us'),
    'china': Cloud(login='https://login.chinacloudapi.cn', graph='https://microsoftgraph.chinacloudapi.cn'),
}

# Names AWX's Azure credential (and the Azure SDKs) put into AZURE_CLOUD_ENVIRONMENT; compared case-insensitively.
CLOUD_ALIASES = {
    'azurecloud': 'public',
    'azurepubliccloud': 'public',
    'azureusgovernment': 'usgov',
    'azureusgovernmentcloud': 'usgov',
    'azurechinacloud': 'china',
}

# Login hosts msal knows itself; for any other host (a private emulator, a proxy) instance discovery would ask
# login.microsoftonline.com about it, so it is switched off. Mirrors msal.authority.WELL_KNOWN_AUTHORITY_HOSTS.
KNOWN_LOGIN_HOSTS = frozenset({
    'login.microsoftonline.com',
    'login.microsoft.com',
    'login.windows.net',
    'sts.windows.net',
    'login.microsoftonline.us',
    'login-us.microsoftonline.com',
    'login.usgovcloudapi.net',
    'login.chinacloudapi.cn',
    'login.partner.microsoftonline.cn',
    'login.microsoftonline.de',
    'login.sovcloud-identity.fr',
    'login.sovcloud-identity.de',
    'login.sovcloud-identity.sg',
})

# Environment variables read for each option, in order (kept in one place for the argument spec and the messages).
OPTION_ENV = {
    'tenant_id': ('AZURE_TENANT_ID', 'AZURE_TENANT'),
    'client_id': ('AZURE_CLIENT_ID',),
    'client_secret': ('AZURE_CLIENT_SECRET', 'AZURE_SECRET'),
    'client_certificate_path': ('AZURE_CLIENT_CERTIFICATE_PATH',),
    'client_certificate_password': ('AZURE_CLIENT_CERTIFICATE_PASSWORD',),
    'federated_token_file': ('AZURE_FEDERATED_TOKEN_FILE',),
    'access_token': ('ENTRA_ACCESS_TOKEN',),
    'auth_method': ('ENTRA_AUTH_METHOD',),
    'cloud': ('AZURE_CLOUD_ENVIRONMENT',),
    'authority_host': ('AZURE_AUTHORITY_HOST',),
    'graph_endpoint': ('ENTRA_GRAPH_ENDPOINT',),
}

_TENANT_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9.-]{0,254}$')


class AuthError(EntraError):
    """Invalid connection settings, or no token could be obtained."""


def option_hint(option: str) -> str:
    """``name`` plus the environment variables it falls back to, for messages."""
    names = OPTION_ENV.get(option)
    if not names:
        return option
    return f"{option} ({' or '.join(names)})"


@dataclass(frozen=True)
class AuthSettings:
    """Connection and credential settings, resolved and validated (no I/O)."""

    method: str
    tenant_id: str | None
    client_id: str | None
    client_secret: str | None = field(repr=False)
    client_certificate_path: str | None
    client_certificate_password: str | None = field(repr=False)
    federated_token_file: str | None
    access_token: str | None = field(repr=False)
    authority_host: str
    graph_endpoint: str
    api_version: str
    verify: bool | str
    timeout: int
    max_retries: int
    cloud: str = 'public'
    token_cache: bool = False  # keep tokens in the private persistent cache (_token_cache.py)

    def secrets(self) -> list[str]:
        """Every secret value, for ``no_log_values``."""
        return [value for value in (self.client_secret, self.client_certificate_password, self.access_token) if value]

    @property
    def graph_resource(self) -> str:
        """The Graph resource (scheme and host): the token audience."""
        parts = urlsplit(self.graph_endpoint)
        return f'{parts.scheme}://{parts.netloc}'

    @property
    def scope(self) -> str:
        return f'{self.graph_resource}/.default'

    @property
    def authority(self) -> str:
        return f'{self.authority_host}/{self.tenant_id}'

    @property
    def instance_discovery(self) -> bool:
        return (urlsplit(self.authority_host).hostname or '').lower() in KNOWN_LOGIN_HOSTS


def _text(params: t.Mapping[str, t.Any], name: str) -> str | None:
    """A string option; an empty or blank value counts as unset."""
    value = params.get(name)
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def resolve_cloud(value: str | None) -> str:
    if not value:
        return 'public'
    key = value.strip().lower()
    if key in CLOUDS:
        return key
    if key in CLOUD_ALIASES:
        return CLOUD_ALIASES[key]
    accepted = ', '.join(list(CLOUDS) + ['AzureCloud', 'AzureUSGovernment', 'AzureChinaCloud'])
    raise AuthError(f"Unknown cloud '{value}' in {option_hint('cloud')}: use one of {accepted}.")


def normalize_https_url(value: str, option: str, *, allow_path: bool) -> str:
    """An https URL without a trailing slash; a bare host name gets ``https://`` in front."""
    raw = value.strip()
    if '://' not in raw:
        raw = 'https://' + raw
    parts = urlsplit(raw)
    example = 'https://login.microsoftonline.us' if option == 'authority_host' else 'https://graph.microsoft.us'
    if parts.scheme.lower() != 'https' or not parts.hostname:
        raise AuthError(f"{option_hint(option)} must be an https URL like {example}, not '{value}'.")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise AuthError(f"{option_hint(option)} must be a plain https URL like {example} (no query, fragment or user), not '{value}'.")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 0 < port < 65536:
        raise AuthError(f"{option_hint(option)} has an invalid port: '{value}'.")
    path = parts.path.rstrip('/')
    if path and not allow_path:
        raise AuthError(f"{option_hint(option)} must be the login host only, like {example} (the tenant is added from tenant_id), not '{value}'.")
    if path.lower().split('/')[-1] in API_VERSIONS:
        raise AuthError(f"{option_hint(option)} must not include the API version (set api_version instead): '{value}'.")
    return f'https://{parts.netloc.lower()}{path}'


def resolve_method(params: t.Mapping[str, t.Any]) -> str:
    method = _text(params, 'auth_method') or 'auto'
    if method != 'auto':
        if method not in METHODS:
            raise AuthError(f"Unknown auth_method '{method}' in {option_hint('auth_method')}: use auto or one of {', '.join(METHODS)}.")
        return method
    if _text(params, 'access_token'):
        return 'access_token'
    if _text(params, 'client_certificate_path'):
        return 'client_certificate'
    if _text(params, 'client_secret'):
        return 'client_secret'
    if _text(params, 'federated_token_file'):
        return 'workload_identity'
    raise AuthError(
        'No credential given: set one of '
        f"{option_hint('access_token')}, {option_hint('client_certificate_path')}, {option_hint('client_secret')} "
        f"or {option_hint('federated_token_file')}, or set auth_method=managed_identity."
    )


# The one input each method cannot do without.
_METHOD_CREDENTIAL = {
    'client_secret': 'client_secret',
    'client_certificate': 'client_certificate_path',
    'workload_identity': 'federated_token_file',
    'access_token': 'access_token',
}


def settings_from_params(params: t.Mapping[str, t.Any]) -> AuthSettings:
    """Validate and resolve the connection options; raises ``AuthError`` naming the option to fix."""
    method = resolve_method(params)
    credential = _METHOD_CREDENTIAL.get(method)
    if credential and not _text(params, credential):
        raise AuthError(f'auth_method={method} needs {option_hint(credential)}.')
    tenant_id = _text(params, 'tenant_id')
    client_id = _text(params, 'client_id')
    if method in ('client_secret', 'client_certificate', 'workload_identity'):
        if not client_id:
            raise AuthError(f'auth_method={method} needs {option_hint("client_id")} (the application (client) id of the app registration).')
        if not tenant_id:
            raise AuthError(f'auth_method={method} needs {option_hint("tenant_id")} (the directory (tenant) id or a verified domain).')
    if tenant_id and not _TENANT_RE.match(tenant_id):
        raise AuthError(f"{option_hint('tenant_id')} must be a directory (tenant) id or a domain name, not '{tenant_id}'.")

    cloud = resolve_cloud(_text(params, 'cloud'))
    authority = _text(params, 'authority_host')
    graph = _text(params, 'graph_endpoint')
    authority_host = normalize_https_url(authority, 'authority_host', allow_path=False) if authority else CLOUDS[cloud].login
    graph_endpoint = normalize_https_url(graph, 'graph_endpoint', allow_path=True) if graph else CLOUDS[cloud].graph

    api_version = _text(params, 'api_version') or 'v1.0'
    if api_version not in API_VERSIONS:
        raise AuthError(f"api_version must be one of {', '.join(API_VERSIONS)}, not '{api_version}'.")
    timeout = params.get('timeout')
    timeout = 30 if timeout is None else int(timeout)
    if timeout <= 0:
        raise AuthError(f'timeout must be a positive number of seconds, not {timeout}.')
    max_retries = params.get('max_retries')
    max_retries = 5 if max_retries is None else int(max_retries)
    if max_retries < 0:
        raise AuthError(f'max_retries must be 0 or more, not {max_retries}.')

    verify: bool | str = True
    ca_bundle = _text(params, 'ca_bundle')
    if params.get('validate_certs') is False:
        verify = False
    elif ca_bundle:
        verify = ca_bundle

    access_token = _text(params, 'access_token') if method == 'access_token' else None
    if access_token and access_token.lower().startswith('bearer '):
        access_token = access_token[7:].strip()
    return AuthSettings(
        method=method,
        tenant_id=tenant_id,
        client_id=client_id,
        client_secret=_text(params, 'client_secret') if method == 'client_secret' else None,
        client_certificate_path=_text(params, 'client_certificate_path') if method == 'client_certificate' else None,
        client_certificate_password=params.get('client_certificate_password') or None if method == 'client_certificate' else None,
        federated_token_file=_text(params, 'federated_token_file') if method == 'workload_identity' else None,
        access_token=access_token,
        authority_host=authority_host,
        graph_endpoint=graph_endpoint,
        api_version=api_version,
        verify=verify,
        timeout=timeout,
        max_retries=max_retries,
        cloud=cloud,
        token_cache=bool(params.get('token_cache')),
    )


class EntraSession(_SessionBase):  # type: ignore[misc,valid-type]
    """A ``requests.Session`` that passes ``verify`` and ``timeout`` with every request.

    requests lets ``REQUESTS_CA_BUNDLE`` override ``Session.verify``, but not a per-request ``verify`` that is a path
    or ``False``; msal and the Graph client share this session, so both honour ``ca_bundle`` and ``validate_certs``.
    """

    def __init__(self, verify: bool | str, timeout: float) -> None:
        super().__init__()
        self.verify = verify
        self.entra_verify = verify
        self.entra_timeout = timeout
        self.headers['User-Agent'] = USER_AGENT

    def request(self, method: str, url: str, *args: t.Any, **kwargs: t.Any) -> t.Any:
        kwargs['verify'] = self.entra_verify
        if kwargs.get('timeout') is None:
            kwargs['timeout'] = self.entra_timeout
        return super().request(method, url, *args, **kwargs)

    def fresh_connections(self) -> None:
        """Drop pooled connections, so the next request opens a new one."""
        for adapter in self.adapters.values():
            adapter.close()

    def clone(self) -> EntraSession:
        """A session with the same TLS and timeout settings, for a worker thread (a Session is not thread-safe)."""
        return type(self)(self.entra_verify, self.entra_timeout)


def _combined_ca_bundle(ca_bundle: str) -> str:
    """Write the default CA store plus ``ca_bundle`` to a private temporary file removed at exit."""
    try:
        with open(ca_bundle, 'rb') as handle:
            extra = handle.read()
    except OSError as exc:
        raise AuthError(f"ca_bundle '{ca_bundle}' cannot be read: {exc.strerror or exc}.") from None
    if b'-----BEGIN CERTIFICATE-----' not in extra:
        raise AuthError(f"ca_bundle '{ca_bundle}' holds no PEM certificate (-----BEGIN CERTIFICATE-----).")
    with open(requests.certs.where(), 'rb') as handle:
        default = handle.read()
    fd, path = tempfile.mkstemp(prefix='entra-autopilot-ca-', suffix='.pem')
    atexit.register(_remove_quietly, path)
    with os.fdopen(fd, 'wb') as handle:
        handle.write(default.rstrip(b'\n') + b'\n' + extra.rstrip(b'\n') + b'\n')
    return path


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def build_session(settings: AuthSettings) -> EntraSession:
    """The one HTTP session of a run, for msal and Graph calls alike."""
    verify = settings.verify
    if isinstance(verify, str):
        verify = _combined_ca_bundle(verify)
    elif verify is False:
        # The module warns once that verification is off; urllib3 would repeat it for every request.
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    return EntraSession(verify, settings.timeout)


_CERT_VERIFY_RE = re.compile(r'certificate verify failed: ([^(\'"]+)')


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f'{parts.scheme}://{parts.netloc}' if parts.netloc else url


def describe_transport_error(exc: Exception, url: str) -> str:
    """One line for a connection or TLS failure, naming the host and what to set."""
    origin = _origin(url)
    text = str(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        match = _CERT_VERIFY_RE.search(text)
        if match or 'CERTIFICATE_VERIFY_FAILED' in text:
            reason = f'certificate verify failed: {match.group(1).strip()}' if match else 'certificate verify failed'
            return (
                f'The TLS certificate of {origin} is not trusted ({reason}). Set ca_bundle to the CA bundle that signed it '
                f'(REQUESTS_CA_BUNDLE works when ca_bundle is not set), or validate_certs=false for tests only.'
            )
        return f'TLS handshake with {origin} failed ({_short_reason(text)}). Check ca_bundle, validate_certs and any proxy in between.'
    if isinstance(exc, requests.exceptions.Timeout):
        return f'No answer from {origin} within the timeout ({_short_reason(text)}). Raise timeout or check the network path.'
    return f'Cannot connect to {origin} ({_short_reason(text)}). Check the host name, the network and any proxy (HTTPS_PROXY).'


def _short_reason(text: str) -> str:
    """The innermost reason of a requests/urllib3 error string."""
    match = re.search(r"Caused by \w+\((?:<[^>]*>)?:?\s*(?:'|\")?(.*?)(?:'|\")?\)+$", text)
    reason = match.group(1) if match else text
    reason = re.sub(r'<urllib3[^>]*>:?\s*', '', reason)
    reason = reason.strip(" '\"")
    return reason[:200] or type(text).__name__


# --- credentials -------------------------------------------------------------------------------------------------

def _read_certificate_credential(settings: AuthSettings) -> dict[str, t.Any]:
    """Load the app certificate (PEM with key and certificate, or PKCS#12) into an msal client credential."""
    path = t.cast(str, settings.client_certificate_path)
    password = settings.client_certificate_password
    where = f"client_certificate_path '{path}'"
    try:
        with open(path, 'rb') as handle:
            data = handle.read()
    except OSError as exc:
        raise AuthError(f'{where} cannot be read: {exc.strerror or exc}.') from None
    secret = password.encode('utf-8') if password else None
    if b'-----BEGIN' in data:
        key, certificates = _load_pem(data, secret, where)
    else:
        key, certificates = _load_pkcs12(data, secret, where)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise AuthError(f'{where}: the private key must be an RSA key (Entra ID signs client assertions with RS256/PS256).')
    wanted = key.public_key().public_numbers()
    certificate = next((cert for cert in certificates if _public_numbers(cert) == wanted), None)
    if certificate is None:
        raise AuthError(f'{where}: no certificate in the file matches its private key; the file must hold the key and its certificate.')
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM).decode('ascii')
    credential: dict[str, t.Any] = {'private_key': key, 'public_certificate': cert_pem}
    if _msal_version() < (1, 35):
        # Older msal needs the SHA-1 thumbprint; newer ones derive the SHA-256 one from the certificate.
        credential['thumbprint'] = certificate.fingerprint(hashes.SHA1()).hex()  # nosec B303 - certificate thumbprint
    return credential


def _public_numbers(cert: t.Any) -> t.Any:
    key = cert.public_key()
    return key.public_numbers() if isinstance(key, rsa.RSAPublicKey) else None


def _msal_version() -> tuple[int, ...]:
    numbers = re.findall(r'\d+', getattr(msal, '__version__', '0'))[:2]
    return tuple(int(n) for n in numbers) or (0,)


def _load_pem(data: bytes, secret: bytes | None, where: str) -> tuple[t.Any, list[t.Any]]:
    key_block = re.search(rb'-----BEGIN ([A-Z ]*)PRIVATE KEY-----.+?-----END \1PRIVATE KEY-----', data, re.S)
    if not key_block:
        raise AuthError(f'{where} holds no private key; it must hold the private key and the certificate (PEM), or be a PKCS#12 (.pfx) file.')
    encrypted = b'ENCRYPTED' in key_block.group(0)
    if encrypted and not secret:
        raise AuthError(f'{where}: the private key is encrypted; set {option_hint("client_certificate_password")}.')
    try:
        key = serialization.load_pem_private_key(key_block.group(0), password=secret if encrypted else None)
    except (ValueError, TypeError):
        if encrypted:
            raise AuthError(f'{where}: the private key cannot be decrypted with client_certificate_password (wrong password?).') from None
        raise AuthError(f'{where}: the private key is not a valid PEM key.') from None
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        certificates = []
    if not certificates:
        raise AuthError(f'{where} holds no certificate; it must hold the private key and the certificate (PEM), or be a PKCS#12 (.pfx) file.')
    return key, certificates


def _load_pkcs12(data: bytes, secret: bytes | None, where: str) -> tuple[t.Any, list[t.Any]]:
    try:
        key, certificate, extra = pkcs12.load_key_and_certificates(data, secret)
    except (ValueError, TypeError):
        if secret:
            raise AuthError(f'{where} cannot be opened with client_certificate_password (wrong password, or not a PEM/PKCS#12 file).') from None
        raise AuthError(
            f'{where} is neither a PEM file nor a PKCS#12 file that opens without a password; '
            f'set {option_hint("client_certificate_password")} if it is protected.'
        ) from None
    if key is None:
        raise AuthError(f'{where}: the PKCS#12 file holds no private key.')
    certificates = ([certificate] if certificate is not None else []) + list(extra or [])
    if not certificates:
        raise AuthError(f'{where}: the PKCS#12 file holds no certificate.')
    return key, certificates


def _read_federated_token(settings: AuthSettings) -> str:
    """The workload identity token; read on every run because the platform rotates the file."""
    path = t.cast(str, settings.federated_token_file)
    try:
        with open(path, encoding='utf-8') as handle:
            token = handle.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else 'not readable text'
        raise AuthError(f"federated_token_file '{path}' cannot be read: {reason}.") from None
    if not token:
        raise AuthError(f"federated_token_file '{path}' is empty; the platform writes the service account token there (check the workload identity setup).")
    return token


# --- token acquisition ---------------------------------------------------------------------------------------------

# What to fix for common AADSTS codes; anything else falls back to the method's credential options.
_AADSTS_HINTS = {
    '7000215': 'check {credential} (use the secret value, not its id)',
    '7000222': 'the client secret has expired; create a new one and set {credential}',
    '700016': 'check client_id (AZURE_CLIENT_ID), tenant_id and cloud: the app is not known in that tenant',
    '90002': 'check tenant_id (AZURE_TENANT_ID or AZURE_TENANT) and cloud',
    '900023': 'check tenant_id (AZURE_TENANT_ID or AZURE_TENANT)',
    '90023': 'check tenant_id (AZURE_TENANT_ID or AZURE_TENANT)',
    '700027': 'upload this certificate to the app registration, or check {credential}',
    '700024': 'the client assertion is expired or not yet valid; check the clock, or that {credential} is refreshed',
    '70021': 'add a federated credential to the app registration whose issuer, subject and audience match this token',
    '700211': 'the token issuer does not match a federated credential of the app registration',
    '700212': 'the token audience does not match a federated credential of the app registration (usually api://AzureADTokenExchange)',
    '700213': 'the token subject does not match a federated credential of the app registration',
    '7000112': 'the application is disabled in the tenant',
    '500011': 'Microsoft Graph is not known at this login host; check cloud and graph_endpoint',
    '500014': 'the service principal of Microsoft Graph is disabled in the tenant',
    '7000229': 'the app has no service principal in this tenant; grant admin consent in the tenant',
    '50034': 'check tenant_id and client_id',
}

_METHOD_INPUTS = {
    'client_secret': ('client_secret',),
    'client_certificate': ('client_certificate_path', 'client_certificate_password'),
    'workload_identity': ('federated_token_file',),
    'managed_identity': ('client_id',),
}


def _first_sentence(text: str) -> str:
    text = text.strip().splitlines()[0] if text.strip() else ''
    match = re.match(r'(.+?[.!?])(\s|$)', text)
    return (match.group(1) if match else text)[:300]


def describe_token_error(settings: AuthSettings, result: t.Mapping[str, t.Any]) -> str:
    """One line for an msal error result: what failed, the AADSTS code, the first sentence, what to set."""
    error = str(result.get('error') or 'error')
    description = str(result.get('error_description') or '')
    match = re.match(r'\s*AADSTS(\d+):\s*(.*)', description, re.S)
    if match:
        code, text = match.group(1), match.group(2)
    else:
        codes = result.get('error_codes') or []
        code, text = (str(codes[0]) if codes else ''), description
    sentence = _first_sentence(text) or error
    credential = ' and '.join(option_hint(name) for name in _METHOD_INPUTS.get(settings.method, ()))
    hint = _AADSTS_HINTS.get(code, '')
    if not hint:
        if settings.method == 'managed_identity':
            hint = 'check that this host has a managed identity and, for a user-assigned one, client_id (AZURE_CLIENT_ID)'
        else:
            hint = f'check {credential}, client_id and tenant_id'
    hint = hint.format(credential=credential)
    if settings.method == 'managed_identity':
        what = 'Managed identity token request' + (f' for client_id {settings.client_id}' if settings.client_id else '')
    else:
        what = f'Token request ({settings.method}) for app {settings.client_id} in tenant {settings.tenant_id} at {settings.authority_host}'
    label = f'AADSTS{code} {error}' if code else error
    message = f'{what} failed: {label}: {sentence} Fix: {hint}.'
    return _scrub(message, settings)


def _scrub(text: str, settings: AuthSettings, extra: t.Iterable[str] = ()) -> str:
    for value in [*settings.secrets(), *extra]:
        if value and len(value) >= 4:
            text = text.replace(value, '********')
    return text


def _authority_error(settings: AuthSettings, exc: Exception) -> str:
    """msal could not read the tenant's OpenID configuration (unknown tenant, wrong host)."""
    text = str(exc.__context__ or exc.__cause__ or exc)
    status = re.search(r'HTTP status: (\d+)', text)
    got = f' (HTTP {status.group(1)})' if status else ''
    fix = f'check {option_hint("tenant_id")} and {option_hint("cloud")} / {option_hint("authority_host")}'
    body = re.search(r'Error: (\{.*\})\s*$', text, re.S)
    if body:
        try:
            result = json.loads(body.group(1))
        except ValueError:
            result = None
        if isinstance(result, dict) and result.get('error'):
            error = str(result['error'])
            match = re.match(r'\s*AADSTS(\d+):\s*(.*)', str(result.get('error_description') or ''), re.S)
            label = f'AADSTS{match.group(1)} {error}' if match else error
            sentence = _first_sentence(match.group(2)) if match else ''
            return f'The login endpoint {settings.authority} rejected the tenant{got}: {label}: {sentence} Fix: {fix}.'
    return f'The login endpoint {settings.authority} has no OpenID configuration{got}: {fix}.'


def _app_credential(settings: AuthSettings, extra_secrets: list[str]) -> tuple[t.Any, str]:
    """msal's ``client_credential`` for an app method, and a fingerprint of it for the token cache key."""
    if settings.method == 'client_secret':
        secret = t.cast(str, settings.client_secret)
        return secret, credential_fingerprint(secret)
    if settings.method == 'client_certificate':
        credential = _read_certificate_credential(settings)
        return credential, credential_fingerprint(credential['public_certificate'])
    assertion = _read_federated_token(settings)
    extra_secrets.append(assertion)
    # a callable, as msal asks for: called for this run's token request only (not at all on a cache hit). The file
    # is rotated by the platform while the app it signs in as stays, so its path identifies the credential.
    return {'client_assertion': lambda: assertion}, credential_fingerprint(t.cast(str, settings.federated_token_file))


def _request_token(settings: AuthSettings, session: t.Any, credential: t.Any, cache: t.Any) -> t.Any:
    """msal's result for one token; ``cache`` (a TokenCacheFile or None) supplies msal's token and http caches."""
    caches = {'token_cache': cache.tokens, 'http_cache': cache.http} if cache is not None else {}
    if settings.method == 'managed_identity':
        identity = (msal.UserAssignedManagedIdentity(client_id=settings.client_id) if settings.client_id
                    else msal.SystemAssignedManagedIdentity())
        client = msal.ManagedIdentityClient(identity, http_client=session, **caches)
        return client.acquire_token_for_client(resource=settings.graph_resource)
    app_kwargs: dict[str, t.Any] = dict(caches)
    if not settings.instance_discovery:
        app_kwargs['instance_discovery'] = False
    app = msal.ConfidentialClientApplication(
        settings.client_id,
        client_credential=credential,
        authority=settings.authority,
        http_client=session,
        **app_kwargs,
    )
    return app.acquire_token_for_client(scopes=[settings.scope])


def acquire_token(settings: AuthSettings, session: t.Any) -> str:
    """A Graph access token for ``settings.method``; raises ``AuthError`` with a one-line reason.

    With ``settings.token_cache`` the token comes from (and goes to) the private cache file of this login host, tenant,
    client, Graph scope and credential, while its lock is held (forks of the same tenant wait for the first one's token).
    """
    if settings.method == 'access_token':
        return t.cast(str, settings.access_token)
    extra_secrets: list[str] = []
    url = settings.authority_host
    try:
        if settings.method == 'managed_identity':
            url = os.environ.get('IDENTITY_ENDPOINT') or os.environ.get('AZURE_POD_IDENTITY_AUTHORITY_HOST') or 'http://169.254.169.254'
            credential, fingerprint = None, '%s@%s' % (settings.client_id or 'system-assigned', url)
        else:
            credential, fingerprint = _app_credential(settings, extra_secrets)
        key = (settings.method, settings.authority_host, settings.tenant_id or '', settings.client_id or '', settings.scope, fingerprint)
        with open_token_cache(key) if settings.token_cache else nullcontext(None) as cache:
            result = _request_token(settings, session, credential, cache)
    except (requests.exceptions.HTTPError, msal.exceptions.MsalServiceError) as exc:
        # msal raises for a 5xx answer of the token endpoint (MsalServiceError "HTTP Error: 503" in recent versions)
        response = getattr(exc, 'response', None)
        if response is not None:
            status = f'HTTP {response.status_code} {response.reason or ""}'.strip()
        else:
            found = re.search(r'\b([45]\d\d)\b', str(exc))
            status = f'HTTP {found.group(1)}' if found else 'an error'
        raise AuthError(f'The login endpoint {settings.authority_host} answered {status} to the token request; try again later, '
                        f'or check {option_hint("cloud")} / {option_hint("authority_host")}.') from None
    except requests.exceptions.RequestException as exc:
        message = describe_transport_error(exc, getattr(exc.request, 'url', None) or url)
        if settings.method == 'managed_identity':
            message = (f'Managed identity endpoint not reachable: {message} auth_method=managed_identity works on an Azure host '
                       'with a managed identity (or where IDENTITY_ENDPOINT and IDENTITY_HEADER are set).')
        raise AuthError(_scrub(message, settings, extra_secrets)) from None
    except json.JSONDecodeError:
        what = 'managed identity endpoint' if settings.method == 'managed_identity' else f'login endpoint {settings.authority}'
        raise AuthError(f'The {what} did not answer with JSON; check {option_hint("cloud")} / {option_hint("authority_host")} '
                        'and any proxy in between.') from None
    except ValueError as exc:
        if settings.method == 'managed_identity':
            raise AuthError(_scrub(f'Managed identity token request failed: {_first_sentence(str(exc))}', settings, extra_secrets)) from None
        raise AuthError(_scrub(_authority_error(settings, exc), settings, extra_secrets)) from None
    if not isinstance(result, dict):
        raise AuthError('The token request returned no result.')
    token = result.get('access_token')
    if token:
        return str(token)
    raise AuthError(_scrub(describe_token_error(settings, result), settings, extra_secrets), aad_error=str(result.get('error') or ''))
