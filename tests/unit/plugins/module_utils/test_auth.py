# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Connection settings, certificate loading, token error messages and TLS trust of ``_auth``."""

from __future__ import annotations

import datetime
import logging
import os

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from ansible_collections.entra.autopilot.plugins.module_utils import _auth
from ansible_collections.entra.autopilot.plugins.module_utils._graph_client import GraphClient
from ansible_collections.entra.autopilot.plugins.module_utils._auth import (
    CLOUDS,
    AuthError,
    AuthSettings,
    acquire_token,
    build_session,
    describe_token_error,
    describe_transport_error,
    settings_from_params,
)

TENANT = '11111111-2222-3333-4444-555555555555'
CLIENT = '99999999-8888-7777-6666-555555555555'
SECRET = 'Sup3r~Secret.Value_123'


def params(**values):
    base = {'auth_method': 'auto', 'cloud': 'public', 'api_version': 'v1.0', 'validate_certs': True, 'timeout': 30, 'max_retries': 5}
    base.update(values)
    return base


# --- method selection and missing inputs --------------------------------------------------------------------------

@pytest.mark.parametrize('given, method', [
    ({'access_token': 'tok', 'client_secret': SECRET, 'client_certificate_path': '/c.pem', 'federated_token_file': '/f'}, 'access_token'),
    ({'client_secret': SECRET, 'client_certificate_path': '/c.pem', 'federated_token_file': '/f'}, 'client_certificate'),
    ({'client_secret': SECRET, 'federated_token_file': '/f'}, 'client_secret'),
    ({'federated_token_file': '/f'}, 'workload_identity'),
])
def test_auto_picks_token_then_certificate_then_secret_then_federated_token(given, method):
    settings = settings_from_params(params(tenant_id=TENANT, client_id=CLIENT, **given))
    assert settings.method == method


def test_auto_never_picks_managed_identity():
    with pytest.raises(AuthError) as err:
        settings_from_params(params(tenant_id=TENANT, client_id=CLIENT))
    msg = str(err.value)
    assert msg.startswith('No credential given')
    for hint in ('access_token (ENTRA_ACCESS_TOKEN)', 'client_certificate_path (AZURE_CLIENT_CERTIFICATE_PATH)',
                 'client_secret (AZURE_CLIENT_SECRET or AZURE_SECRET)', 'federated_token_file (AZURE_FEDERATED_TOKEN_FILE)',
                 'auth_method=managed_identity'):
        assert hint in msg


def test_empty_values_count_as_unset():
    settings = settings_from_params(params(tenant_id=TENANT, client_id=CLIENT, access_token='', client_certificate_path='  ',
                                           client_secret=SECRET))
    assert settings.method == 'client_secret'


@pytest.mark.parametrize('given, expected', [
    ({'auth_method': 'client_secret', 'tenant_id': TENANT, 'client_id': CLIENT},
     'auth_method=client_secret needs client_secret (AZURE_CLIENT_SECRET or AZURE_SECRET).'),
    ({'auth_method': 'client_certificate', 'tenant_id': TENANT, 'client_id': CLIENT, 'client_secret': SECRET},
     'auth_method=client_certificate needs client_certificate_path (AZURE_CLIENT_CERTIFICATE_PATH).'),
    ({'auth_method': 'workload_identity', 'tenant_id': TENANT, 'client_id': CLIENT},
     'auth_method=workload_identity needs federated_token_file (AZURE_FEDERATED_TOKEN_FILE).'),
    ({'auth_method': 'access_token', 'client_secret': SECRET},
     'auth_method=access_token needs access_token (ENTRA_ACCESS_TOKEN).'),
    ({'client_certificate_path': '/c.pem', 'tenant_id': TENANT},
     'auth_method=client_certificate needs client_id (AZURE_CLIENT_ID)'),
    ({'client_secret': SECRET, 'client_id': CLIENT},
     'auth_method=client_secret needs tenant_id (AZURE_TENANT_ID or AZURE_TENANT)'),
    ({'federated_token_file': '/f', 'client_id': CLIENT},
     'auth_method=workload_identity needs tenant_id (AZURE_TENANT_ID or AZURE_TENANT)'),
])
def test_missing_input_names_option_and_environment(given, expected):
    with pytest.raises(AuthError) as err:
        settings_from_params(params(**given))
    assert str(err.value).startswith(expected)
    assert SECRET not in str(err.value)


def test_access_token_and_managed_identity_need_no_tenant():
    assert settings_from_params(params(access_token='abc')).tenant_id is None
    mi = settings_from_params(params(auth_method='managed_identity'))
    assert (mi.method, mi.client_id, mi.tenant_id) == ('managed_identity', None, None)
    user_assigned = settings_from_params(params(auth_method='managed_identity', client_id=CLIENT))
    assert user_assigned.client_id == CLIENT


def test_named_method_ignores_other_credentials_and_keeps_only_its_secret():
    settings = settings_from_params(params(auth_method='client_secret', tenant_id=TENANT, client_id=CLIENT, client_secret=SECRET,
                                           access_token='leftover', client_certificate_password='pw'))
    assert settings.method == 'client_secret'
    assert settings.secrets() == [SECRET]
    assert SECRET not in repr(settings)


def test_bearer_prefix_is_removed_from_access_token():
    assert settings_from_params(params(access_token='Bearer eyJabc')).access_token == 'eyJabc'


def test_bad_tenant_id():
    with pytest.raises(AuthError, match=r"tenant_id \(AZURE_TENANT_ID or AZURE_TENANT\) must be a directory"):
        settings_from_params(params(tenant_id='a/b', client_id=CLIENT, client_secret=SECRET))


@pytest.mark.parametrize('name, value', [('timeout', 0), ('max_retries', -1)])
def test_bad_numbers(name, value):
    with pytest.raises(AuthError, match=name):
        settings_from_params(params(access_token='x', **{name: value}))


# --- clouds and endpoints --------------------------------------------------------------------------------------------

@pytest.mark.parametrize('value, cloud', [
    ('public', 'public'), ('usgov', 'usgov'), ('usgov_dod', 'usgov_dod'), ('china', 'china'),
    ('AzureCloud', 'public'), ('AzureUSGovernment', 'usgov'), ('AzureChinaCloud', 'china'), ('azurechinacloud', 'china'),
    (None, 'public'), ('', 'public'),
])
def test_cloud_names(value, cloud):
    settings = settings_from_params(params(access_token='x', cloud=value))
    assert settings.cloud == cloud
    assert settings.authority_host == CLOUDS[cloud].login
    assert settings.graph_endpoint == CLOUDS[cloud].graph


def test_cloud_table():
    assert CLOUDS['usgov_dod'].graph == 'https://dod-graph.microsoft.us'
    assert CLOUDS['usgov_dod'].login == 'https://login.microsoftonline.us'
    assert CLOUDS['china'].graph == 'https://microsoftgraph.chinacloudapi.cn'
    assert CLOUDS['china'].login == 'https://login.chinacloudapi.cn'


def test_unknown_cloud_lists_accepted_names():
    with pytest.raises(AuthError) as err:
        settings_from_params(params(access_token='x', cloud='AzureGermanCloud'))
    msg = str(err.value)
    assert "Unknown cloud 'AzureGermanCloud' in cloud (AZURE_CLOUD_ENVIRONMENT)" in msg
    for name in ('public', 'usgov', 'usgov_dod', 'china', 'AzureCloud', 'AzureUSGovernment', 'AzureChinaCloud'):
        assert name in msg


@pytest.mark.parametrize('value, expected', [
    ('login.microsoftonline.us', 'https://login.microsoftonline.us'),
    ('https://Login.MicrosoftOnline.us/', 'https://login.microsoftonline.us'),
    ('https://127.0.0.1:8443', 'https://127.0.0.1:8443'),
])
def test_authority_host_forms(value, expected):
    settings = settings_from_params(params(tenant_id=TENANT, client_id=CLIENT, client_secret=SECRET, authority_host=value))
    assert settings.authority_host == expected
    assert settings.authority == f'{expected}/{TENANT}'


@pytest.mark.parametrize('value, fragment', [
    ('http://login.microsoftonline.us', 'must be an https URL'),
    ('ftp://x', 'must be an https URL'),
    ('https://login.microsoftonline.us/' + TENANT, 'must be the login host only'),
    ('https://login.microsoftonline.us?x=1', 'no query'),
    ('https://host:99999', 'invalid port'),
])
def test_bad_authority_host(value, fragment):
    with pytest.raises(AuthError) as err:
        settings_from_params(params(tenant_id=TENANT, client_id=CLIENT, client_secret=SECRET, authority_host=value))
    assert 'authority_host (AZURE_AUTHORITY_HOST)' in str(err.value)
    assert fragment in str(err.value)


def test_graph_endpoint_forms():
    settings = settings_from_params(params(access_token='x', graph_endpoint='graph.microsoft.us/'))
    assert settings.graph_endpoint == 'https://graph.microsoft.us'
    assert settings.scope == 'https://graph.microsoft.us/.default'
    proxied = settings_from_params(params(access_token='x', graph_endpoint='https://proxy.example:8443/graph/'))
    assert proxied.graph_endpoint == 'https://proxy.example:8443/graph'
    assert proxied.graph_resource == 'https://proxy.example:8443'
    with pytest.raises(AuthError, match=r'graph_endpoint \(ENTRA_GRAPH_ENDPOINT\) must be an https URL'):
        settings_from_params(params(access_token='x', graph_endpoint='http://graph.microsoft.com'))
    with pytest.raises(AuthError, match='must not include the API version'):
        settings_from_params(params(access_token='x', graph_endpoint='https://graph.microsoft.com/v1.0'))


@pytest.mark.parametrize('host, discovery', [
    ('https://login.microsoftonline.com', True), ('https://login.microsoftonline.us', True), ('https://login.chinacloudapi.cn', True),
    ('https://login.microsoft.com', True), ('https://login.windows.net', True), ('https://login.partner.microsoftonline.cn', True),
    ('https://127.0.0.1:4443', False), ('https://login.example.com', False),
])
def test_instance_discovery_only_for_known_login_hosts(host, discovery):
    settings = settings_from_params(params(tenant_id=TENANT, client_id=CLIENT, client_secret=SECRET, authority_host=host))
    assert settings.instance_discovery is discovery


def test_tls_settings():
    assert settings_from_params(params(access_token='x')).verify is True
    assert settings_from_params(params(access_token='x', ca_bundle='/ca.pem')).verify == '/ca.pem'
    assert settings_from_params(params(access_token='x', ca_bundle='/ca.pem', validate_certs=False)).verify is False


# --- certificates and federated tokens -------------------------------------------------------------------------------

def _certificate(key, name='entra-autopilot-test'):
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256()))


@pytest.fixture(scope='module')
def rsa_pair():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, _certificate(key)


def _pem(key, cert, password=None):
    encryption = serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
    return (key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
            + cert.public_bytes(serialization.Encoding.PEM))


def _cert_settings(path, password=None):
    return settings_from_params(params(tenant_id=TENANT, client_id=CLIENT, client_certificate_path=str(path),
                                       client_certificate_password=password))


def _matches(credential, key, cert):
    assert credential['private_key'].public_key().public_numbers() == key.public_key().public_numbers()
    assert credential['public_certificate'] == cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.mark.parametrize('password', [None, 'pem-pass'])
def test_pem_certificate(tmp_path, rsa_pair, password):
    key, cert = rsa_pair
    path = tmp_path / 'app.pem'
    path.write_bytes(_pem(key, cert, password))
    _matches(_auth._read_certificate_credential(_cert_settings(path, password)), key, cert)


def test_pem_with_chain_picks_the_certificate_of_the_key(tmp_path, rsa_pair):
    key, cert = rsa_pair
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / 'chain.pem'
    path.write_bytes(_certificate(other, 'ca').public_bytes(serialization.Encoding.PEM) + _pem(key, cert))
    _matches(_auth._read_certificate_credential(_cert_settings(path)), key, cert)


@pytest.mark.parametrize('password', [None, 'pfx-pass'])
def test_pkcs12_certificate(tmp_path, rsa_pair, password):
    key, cert = rsa_pair
    encryption = serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
    path = tmp_path / 'app.pfx'
    path.write_bytes(pkcs12.serialize_key_and_certificates(b'app', key, cert, None, encryption))
    _matches(_auth._read_certificate_credential(_cert_settings(path, password)), key, cert)


def test_certificate_errors(tmp_path, rsa_pair):
    key, cert = rsa_pair
    cases = {}
    (tmp_path / 'enc.pem').write_bytes(_pem(key, cert, 'right-password'))
    cases['enc.pem', None] = 'the private key is encrypted; set client_certificate_password (AZURE_CLIENT_CERTIFICATE_PASSWORD)'
    cases['enc.pem', 'WrongPassword1'] = 'cannot be decrypted with client_certificate_password'
    (tmp_path / 'app.pfx').write_bytes(pkcs12.serialize_key_and_certificates(
        b'app', key, cert, None, serialization.BestAvailableEncryption(b'right-password')))
    cases['app.pfx', 'WrongPassword1'] = 'cannot be opened with client_certificate_password'
    cases['app.pfx', None] = 'set client_certificate_password (AZURE_CLIENT_CERTIFICATE_PASSWORD) if it is protected'
    (tmp_path / 'cert-only.pem').write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    cases['cert-only.pem', None] = 'holds no private key'
    (tmp_path / 'key-only.pem').write_bytes(_pem(key, cert)[:_pem(key, cert).index(b'-----BEGIN CERTIFICATE')])
    cases['key-only.pem', None] = 'holds no certificate'
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / 'mismatch.pem').write_bytes(_pem(other, cert)[:_pem(other, cert).index(b'-----BEGIN CERTIFICATE')]
                                            + cert.public_bytes(serialization.Encoding.PEM))
    cases['mismatch.pem', None] = 'no certificate in the file matches its private key'
    ec_key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / 'ec.pem').write_bytes(_pem(ec_key, _certificate(ec_key)))
    cases['ec.pem', None] = 'must be an RSA key'
    cases['missing.pem', None] = 'cannot be read'
    for (name, password), fragment in cases.items():
        with pytest.raises(AuthError) as err:
            _auth._read_certificate_credential(_cert_settings(tmp_path / name, password))
        assert fragment in str(err.value), name
        assert f"client_certificate_path '{tmp_path / name}'" in str(err.value)
        if password:
            assert password not in str(err.value)


def test_federated_token_is_read_each_time_and_empty_file_fails(tmp_path):
    path = tmp_path / 'token.jwt'
    settings = settings_from_params(params(tenant_id=TENANT, client_id=CLIENT, federated_token_file=str(path)))
    path.write_text('first.token.value\n')
    assert _auth._read_federated_token(settings) == 'first.token.value'
    path.write_text('second.token.value')
    assert _auth._read_federated_token(settings) == 'second.token.value'
    path.write_text('  \n')
    with pytest.raises(AuthError, match=f"federated_token_file '{path}' is empty"):
        _auth._read_federated_token(settings)
    path.unlink()
    with pytest.raises(AuthError, match='cannot be read'):
        _auth._read_federated_token(settings)


# --- messages ------------------------------------------------------------------------------------------------------

def _secret_settings(**extra):
    return settings_from_params(params(tenant_id=TENANT, client_id=CLIENT, client_secret=SECRET, **extra))


def test_aadsts_message_is_one_line_with_code_first_sentence_and_fix():
    result = {
        'error': 'invalid_client',
        'error_description': ("AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the "
                              "client secret value, not the client secret ID.\r\nTrace ID: abc\r\nCorrelation ID: def\r\n"
                              "Timestamp: 2026-01-01 00:00:00Z"),
        'error_codes': [7000215],
    }
    msg = describe_token_error(_secret_settings(), result)
    assert '\n' not in msg and '\r' not in msg
    assert msg == (f'Token request (client_secret) for app {CLIENT} in tenant {TENANT} at https://login.microsoftonline.com failed: '
                   'AADSTS7000215 invalid_client: Invalid client secret provided. '
                   'Fix: check client_secret (AZURE_CLIENT_SECRET or AZURE_SECRET) (use the secret value, not its id).')


def test_aadsts_unknown_code_falls_back_to_credential_options():
    msg = describe_token_error(_secret_settings(), {'error': 'invalid_request', 'error_description': 'AADSTS12345: Something odd. More.'})
    assert 'AADSTS12345 invalid_request: Something odd.' in msg
    assert 'More' not in msg
    assert 'check client_secret (AZURE_CLIENT_SECRET or AZURE_SECRET), client_id and tenant_id' in msg


def test_token_error_never_echoes_a_secret():
    msg = describe_token_error(_secret_settings(), {'error': 'invalid_client', 'error_description': f'AADSTS7000215: Bad secret {SECRET}.'})
    assert SECRET not in msg
    assert '********' in msg


def test_managed_identity_error_message():
    settings = settings_from_params(params(auth_method='managed_identity', client_id=CLIENT))
    msg = describe_token_error(settings, {'error': 'invalid_request', 'error_description': 'Identity not found'})
    assert msg.startswith(f'Managed identity token request for client_id {CLIENT} failed: invalid_request: Identity not found')


def _ssl_error():
    return requests.exceptions.SSLError(
        "HTTPSConnectionPool(host='127.0.0.1', port=4443): Max retries exceeded with url: /t/v2.0/.well-known/openid-configuration "
        "(Caused by SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
        "self-signed certificate in certificate chain (_ssl.c:1000)')))")


def test_transport_error_messages():
    msg = describe_transport_error(_ssl_error(), 'https://127.0.0.1:4443/t/v2.0/.well-known/openid-configuration')
    assert msg.startswith('The TLS certificate of https://127.0.0.1:4443 is not trusted '
                          '(certificate verify failed: self-signed certificate in certificate chain).')
    assert 'ca_bundle' in msg and 'REQUESTS_CA_BUNDLE' in msg and 'validate_certs=false' in msg
    refused = requests.exceptions.ConnectionError(
        "HTTPSConnectionPool(host='127.0.0.1', port=1): Max retries exceeded with url: /x (Caused by "
        "NewConnectionError('<urllib3.connection.HTTPSConnection object at 0x7f>: Failed to establish a new connection: "
        "[Errno 111] Connection refused'))")
    msg = describe_transport_error(refused, 'https://127.0.0.1:1/x')
    assert msg.startswith('Cannot connect to https://127.0.0.1:1 (')
    assert 'Connection refused' in msg and '0x7f' not in msg


# --- session and TLS trust -------------------------------------------------------------------------------------------

def test_combined_ca_bundle_is_default_store_plus_extra_and_removed_at_exit(tmp_path, rsa_pair, monkeypatch):
    registered = []
    monkeypatch.setattr(_auth.atexit, 'register', lambda func, *args: registered.append((func, args)))
    cert = rsa_pair[1]
    extra = tmp_path / 'extra.pem'
    extra.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    session = build_session(_auth.settings_from_params(params(access_token='x', ca_bundle=str(extra))))
    path = session.entra_verify
    assert path != str(extra) and os.path.isfile(path)
    assert os.stat(path).st_mode & 0o077 == 0
    data = open(path, 'rb').read()
    assert data.startswith(open(requests.certs.where(), 'rb').read().rstrip(b'\n'))
    assert data.rstrip(b'\n').endswith(extra.read_bytes().rstrip(b'\n'))
    func, args = registered[-1]
    func(*args)
    assert not os.path.exists(path)


def test_bad_ca_bundle(tmp_path):
    with pytest.raises(AuthError, match="ca_bundle '.*' cannot be read"):
        build_session(settings_from_params(params(access_token='x', ca_bundle=str(tmp_path / 'nope.pem'))))
    (tmp_path / 'empty.pem').write_text('not a certificate')
    with pytest.raises(AuthError, match='holds no PEM certificate'):
        build_session(settings_from_params(params(access_token='x', ca_bundle=str(tmp_path / 'empty.pem'))))


def test_session_passes_verify_and_timeout_per_request(monkeypatch):
    """requests lets REQUESTS_CA_BUNDLE override Session.verify, not a per-request verify: check what reaches send()."""
    monkeypatch.setenv('REQUESTS_CA_BUNDLE', '/env/bundle.pem')
    seen = {}

    def send(self, request, **kwargs):
        seen.update(kwargs)
        raise requests.exceptions.ConnectionError('stop')

    monkeypatch.setattr(requests.Session, 'send', send)
    for verify, expected in ((False, False), ('/mine.pem', '/mine.pem'), (True, '/env/bundle.pem')):
        session = _auth.EntraSession(verify, 7)
        with pytest.raises(requests.exceptions.ConnectionError):
            session.get('https://graph.example/v1.0/x')
        assert seen['verify'] == expected
        assert seen['timeout'] == 7
    assert session.headers['User-Agent'] == 'entra.autopilot/0.1.0'


def test_access_token_method_makes_no_request():
    settings = AuthSettings(method='access_token', tenant_id=None, client_id=None, client_secret=None, client_certificate_path=None,
                            client_certificate_password=None, federated_token_file=None, access_token='tok', authority_host='https://x',
                            graph_endpoint='https://g', api_version='v1.0', verify=True, timeout=1, max_retries=0)
    assert _auth.acquire_token(settings, session=None) == 'tok'


def test_msal_loggers_are_silent():
    import logging
    logger = logging.getLogger('msal.application')
    assert not logger.isEnabledFor(logging.CRITICAL)
    assert not logging.getLogger('msal.managed_identity').isEnabledFor(logging.DEBUG)


# --- real msal + requests over HTTPS against the emulator -----------------------------------------------------------

def emulator_params(tenant, **options):
    """Module parameters for an emulator tenant (its own login and Graph hosts, its CA)."""
    values = params(tenant_id=tenant['tenant_id'], client_id=tenant['client_id'], authority_host=tenant['authority_host'],
                    graph_endpoint=tenant['graph_endpoint'], ca_bundle=tenant['ca_bundle'])
    values.update(options)
    return values


def token_for(values):
    settings = settings_from_params(values)
    session = build_session(settings)
    return settings, session, acquire_token(settings, session)


def read_policy(settings, session, token):
    client = GraphClient(session, settings.graph_endpoint, settings.api_version, token, timeout=10, max_retries=0)
    return client.get('policies/deviceRegistrationPolicy')


def new_entries(emulator, tenant, since):
    return [(entry['kind'], entry['method'], entry['status']) for entry in emulator.control.log(tenant=tenant['tenant_id'], since=since)]


def secrets_of(tenant):
    values = [tenant['client_secret'], tenant['pfx_password'], tenant['readonly_client_secret'],
              tenant['managed_identity']['identity_header']]
    with open(tenant['federated_token_file'], encoding='utf-8') as handle:
        values.append(handle.read().strip())
    return [value for value in values if value]


CREDENTIALS = {
    'client_secret': lambda tenant: {'client_secret': tenant['client_secret']},
    'pem': lambda tenant: {'client_certificate_path': tenant['certificate_path']},
    'encrypted_pem': lambda tenant: {'client_certificate_path': tenant['encrypted_certificate_path'],
                                     'client_certificate_password': tenant['pfx_password']},
    'pfx': lambda tenant: {'client_certificate_path': tenant['pfx_path'], 'client_certificate_password': tenant['pfx_password']},
    'workload_identity': lambda tenant: {'federated_token_file': tenant['federated_token_file']},
}


@pytest.mark.parametrize('credential', list(CREDENTIALS))
def test_app_credentials_get_a_token_graph_accepts(emulator, tenant, credential):
    since = emulator.control.last_seq()
    settings, session, token = token_for(emulator_params(tenant, **CREDENTIALS[credential](tenant)))
    assert settings.method == {'pem': 'client_certificate', 'encrypted_pem': 'client_certificate',
                               'pfx': 'client_certificate'}.get(credential, credential)
    assert settings.instance_discovery is False
    assert read_policy(settings, session, token)['id'] == 'deviceRegistrationPolicy'
    # no instance discovery at login.microsoftonline.com: the tenant's OpenID configuration, one token request, the call
    assert new_entries(emulator, tenant, since) == [('discovery', 'GET', 200), ('token', 'POST', 200), ('graph', 'GET', 200)]


@pytest.mark.parametrize('user_assigned', [False, True])
@pytest.mark.parametrize('source', ['app_service', 'imds'])
def test_managed_identity(emulator, tenant, monkeypatch, source, user_assigned):
    identity = tenant['managed_identity']
    for name in ('IDENTITY_ENDPOINT', 'IDENTITY_HEADER', 'IDENTITY_SERVER_THUMBPRINT', 'MSI_ENDPOINT', 'MSI_SECRET', 'IMDS_ENDPOINT'):
        monkeypatch.delenv(name, raising=False)
    if source == 'app_service':
        monkeypatch.setenv('IDENTITY_ENDPOINT', identity['identity_endpoint'])
        monkeypatch.setenv('IDENTITY_HEADER', identity['identity_header'])
    else:
        monkeypatch.setenv('AZURE_POD_IDENTITY_AUTHORITY_HOST', identity['imds_host'])
    client_id = identity['user_assigned_client_id'] if user_assigned else None
    since = emulator.control.last_seq()
    settings, session, token = token_for(params(auth_method='managed_identity', client_id=client_id, graph_endpoint=tenant['graph_endpoint'],
                                                ca_bundle=tenant['ca_bundle']))
    assert read_policy(settings, session, token)['id'] == 'deviceRegistrationPolicy'
    entries = emulator.control.log(tenant=tenant['tenant_id'], since=since)
    assert [(entry['kind'], entry['status']) for entry in entries] == [('msi', 200), ('graph', 200)]
    assert (entries[0]['query'].get('client_id') == client_id) if user_assigned else ('client_id' not in entries[0]['query'])


def test_managed_identity_unreachable(monkeypatch):
    import socket
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    for name in ('IDENTITY_ENDPOINT', 'IDENTITY_HEADER', 'MSI_ENDPOINT', 'MSI_SECRET', 'IMDS_ENDPOINT'):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv('AZURE_POD_IDENTITY_AUTHORITY_HOST', f'http://127.0.0.1:{port}')
    with pytest.raises(AuthError) as err:
        token_for(params(auth_method='managed_identity'))
    assert str(err.value).startswith(f'Managed identity endpoint not reachable: Cannot connect to http://127.0.0.1:{port} (')


def test_access_token_skips_msal(emulator, tenant):
    token = emulator.control.token(tenant['tenant_id'], tenant['client_id'])
    since = emulator.control.last_seq()
    settings, session, used = token_for(emulator_params(tenant, client_id=None, tenant_id=None, access_token=token))
    assert used == token
    assert read_policy(settings, session, used)['id'] == 'deviceRegistrationPolicy'
    assert new_entries(emulator, tenant, since) == [('graph', 'GET', 200)]


def assert_clean(message, tenant, *extra):
    assert '\n' not in message
    for secret in [*secrets_of(tenant), *extra]:
        assert secret not in message


def test_wrong_secret(emulator, tenant):
    wrong = 'emu~ThisIsNotTheSecret.1234567890'
    with pytest.raises(AuthError) as err:
        token_for(emulator_params(tenant, client_secret=wrong))
    msg = str(err.value)
    assert msg.startswith(f"Token request (client_secret) for app {tenant['client_id']} in tenant {tenant['tenant_id']} at "
                          f"{tenant['authority_host']} failed: AADSTS7000215 invalid_client: Invalid client secret provided.")
    assert 'Fix: check client_secret (AZURE_CLIENT_SECRET or AZURE_SECRET)' in msg
    assert_clean(msg, tenant, wrong)


def test_expired_secret(tenant):
    app = tenant['apps']['expired-secret']
    with pytest.raises(AuthError) as err:
        token_for(emulator_params(tenant, client_id=app['client_id'], client_secret=app['client_secret']))
    assert 'AADSTS7000222 invalid_client' in str(err.value)
    assert 'the client secret has expired' in str(err.value)
    assert_clean(str(err.value), tenant, app['client_secret'])


def test_unregistered_certificate(tenant):
    with pytest.raises(AuthError) as err:
        token_for(emulator_params(tenant, client_certificate_path=tenant['unregistered_certificate_path']))
    assert 'AADSTS700027 invalid_client' in str(err.value)
    assert 'upload this certificate to the app registration' in str(err.value)


def test_wrong_pfx_password_fails_before_any_request(emulator, tenant):
    since = emulator.control.last_seq()
    with pytest.raises(AuthError) as err:
        token_for(emulator_params(tenant, client_certificate_path=tenant['pfx_path'], client_certificate_password='not-the-password'))
    assert 'cannot be opened with client_certificate_password' in str(err.value)
    assert_clean(str(err.value), tenant, 'not-the-password')
    assert new_entries(emulator, tenant, since) == []


def test_unknown_tenant(emulator, tenant):
    unknown = '00000000-0000-0000-0000-00000000beef'
    with pytest.raises(AuthError) as err:
        token_for(emulator_params(tenant, tenant_id=unknown, client_secret=tenant['client_secret']))
    msg = str(err.value)
    assert msg.startswith(f"The login endpoint {tenant['authority_host']}/{unknown} rejected the tenant (HTTP 400): AADSTS90002")
    assert msg.endswith('Fix: check tenant_id (AZURE_TENANT_ID or AZURE_TENANT) and cloud (AZURE_CLOUD_ENVIRONMENT) / '
                        'authority_host (AZURE_AUTHORITY_HOST).')
    assert_clean(msg, tenant)


def test_workload_identity_file_is_read_on_each_run(emulator, tenant, tmp_path):
    app = tenant['apps']['automation']
    path = tmp_path / 'token.jwt'
    path.write_text(emulator.control.federated_token(app['federated_subject']))
    values = emulator_params(tenant, federated_token_file=str(path))
    assert token_for(values)[2]
    path.write_text('')
    since = emulator.control.last_seq()
    with pytest.raises(AuthError, match='is empty'):
        token_for(values)
    assert new_entries(emulator, tenant, since) == []
    path.write_text(emulator.control.federated_token('system:serviceaccount:other:intruder'))
    with pytest.raises(AuthError) as err:
        token_for(values)
    assert 'AADSTS70021' in str(err.value)
    assert_clean(str(err.value), tenant, path.read_text())


def test_token_endpoint_unavailable(emulator, tenant):
    emulator.control.fault(tenant=tenant['tenant_id'], kind='token', path='token', status=503, count=1)
    with pytest.raises(AuthError) as err:
        token_for(emulator_params(tenant, client_secret=tenant['client_secret']))
    assert str(err.value).startswith(f"The login endpoint {tenant['authority_host']} answered HTTP 503")


# --- TLS trust against the emulator's own CA ------------------------------------------------------------------------

def test_untrusted_ca(emulator, tenant, monkeypatch):
    monkeypatch.delenv('REQUESTS_CA_BUNDLE', raising=False)
    monkeypatch.delenv('CURL_CA_BUNDLE', raising=False)
    with pytest.raises(AuthError) as err:
        token_for(emulator_params(tenant, ca_bundle=None, client_secret=tenant['client_secret']))
    msg = str(err.value)
    assert msg.startswith(f"The TLS certificate of {tenant['authority_host']} is not trusted (certificate verify failed: ")
    assert 'Set ca_bundle' in msg and 'REQUESTS_CA_BUNDLE' in msg
    assert_clean(msg, tenant)


def test_requests_ca_bundle_alone_is_honoured(tenant, monkeypatch):
    monkeypatch.setenv('REQUESTS_CA_BUNDLE', tenant['ca_bundle'])
    settings, session, token = token_for(emulator_params(tenant, ca_bundle=None, client_secret=tenant['client_secret']))
    assert read_policy(settings, session, token)['id'] == 'deviceRegistrationPolicy'


def test_ca_bundle_wins_over_requests_ca_bundle(tenant, monkeypatch):
    # REQUESTS_CA_BUNDLE names a bundle without the emulator's CA; ca_bundle must still be used for login and Graph
    monkeypatch.setenv('REQUESTS_CA_BUNDLE', requests.certs.where())
    settings, session, token = token_for(emulator_params(tenant, client_secret=tenant['client_secret']))
    assert read_policy(settings, session, token)['id'] == 'deviceRegistrationPolicy'


def test_validate_certs_false_wins_over_requests_ca_bundle(tenant, monkeypatch, recwarn):
    monkeypatch.setenv('REQUESTS_CA_BUNDLE', requests.certs.where())
    settings, session, token = token_for(emulator_params(tenant, ca_bundle=None, validate_certs=False, client_secret=tenant['client_secret']))
    assert read_policy(settings, session, token)['id'] == 'deviceRegistrationPolicy'
    assert not [w for w in recwarn if 'InsecureRequestWarning' in type(w.message).__name__]


def test_user_agent_names_the_collection_version():
    with open(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'galaxy.yml'), encoding='utf-8') as handle:
        version = next(line.split(':', 1)[1].strip().strip('\'"') for line in handle if line.startswith('version:'))
    assert _auth.USER_AGENT == f'entra.autopilot/{version}'


@pytest.mark.parametrize('method', ['client_secret', 'managed_identity'])
def test_nothing_secret_is_logged_at_debug_level(emulator, tenant, monkeypatch, caplog, method):
    caplog.set_level(logging.DEBUG)
    identity = tenant['managed_identity']
    if method == 'managed_identity':
        monkeypatch.setenv('IDENTITY_ENDPOINT', identity['identity_endpoint'])
        monkeypatch.setenv('IDENTITY_HEADER', identity['identity_header'])
        values = params(auth_method='managed_identity', graph_endpoint=tenant['graph_endpoint'], ca_bundle=tenant['ca_bundle'])
    else:
        values = emulator_params(tenant, client_secret=tenant['client_secret'])
    settings, session, token = token_for(values)
    read_policy(settings, session, token)
    for secret in [token, *secrets_of(tenant)]:
        assert secret not in caplog.text
    assert not [record for record in caplog.records if record.name.startswith('msal')]
