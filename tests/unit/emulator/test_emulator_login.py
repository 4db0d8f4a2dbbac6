# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The emulator's Entra ID login, driven by real msal over HTTPS (and raw requests for what msal hides)."""

from __future__ import annotations

import time
import uuid

import jwt
import msal
import pytest
import requests

TOKEN_PATH = '%s/%s/oauth2/v2.0/token'


def _claims(token: str) -> dict:
    return jwt.decode(token, options={'verify_signature': False})


def _post_token(emulator, tenant_segment: str, **form: str) -> requests.Response:
    return requests.post(TOKEN_PATH % (emulator.url, tenant_segment), data=form, verify=emulator.ca_bundle, timeout=30)


def _assert_aadsts(result: dict, error: str, code: int) -> None:
    assert result.get('error') == error, result
    assert result['error_description'].startswith('AADSTS%d:' % code), result
    assert result['error_codes'] == [code]
    for key in ('timestamp', 'trace_id', 'correlation_id', 'error_uri'):
        assert key in result


def test_openid_configuration(emulator, tenant):
    response = requests.get('%s/%s/v2.0/.well-known/openid-configuration' % (emulator.url, tenant['tenant_id']),
                            verify=emulator.ca_bundle, timeout=30)
    assert response.status_code == 200
    config = response.json()
    assert config['token_endpoint'] == TOKEN_PATH % (emulator.url, tenant['tenant_id'])
    assert config['authorization_endpoint'] == '%s/%s/oauth2/v2.0/authorize' % (emulator.url, tenant['tenant_id'])
    assert config['issuer'] == '%s/%s/v2.0' % (emulator.url, tenant['tenant_id'])


def test_openid_configuration_unknown_tenant(emulator):
    unknown = str(uuid.uuid4())
    response = requests.get('%s/%s/v2.0/.well-known/openid-configuration' % (emulator.url, unknown), verify=emulator.ca_bundle, timeout=30)
    assert response.status_code == 400
    _assert_aadsts(response.json(), 'invalid_tenant', 90002)
    assert unknown in response.json()['error_description']


def test_secret_token_claims(emulator, tenant, make_app, scope):
    result = make_app(tenant['client_secret']).acquire_token_for_client(scope)
    assert result['token_type'] == 'Bearer'
    assert 3500 < result['expires_in'] <= 3600
    claims = _claims(result['access_token'])
    assert claims['tid'] == tenant['tenant_id']
    assert claims['appid'] == tenant['client_id']
    assert claims['aud'] == emulator.url
    assert claims['appidacr'] == '1'
    assert set(claims['roles']) == set(tenant['apps']['automation']['permissions'])
    assert claims['exp'] > time.time() + 3500
    header = jwt.get_unverified_header(result['access_token'])
    assert header['alg'] == 'RS256'
    # the emulator publishes its signing key, so the token verifies like an Entra token does
    keys = requests.get('%s/%s/discovery/v2.0/keys' % (emulator.url, tenant['tenant_id']), verify=emulator.ca_bundle, timeout=30).json()
    key = jwt.PyJWK(keys['keys'][0])
    assert jwt.decode(result['access_token'], key.key, algorithms=['RS256'], audience=emulator.url)['tid'] == tenant['tenant_id']


def test_msal_caches_the_token(emulator, tenant, make_app, scope):
    app = make_app(tenant['client_secret'])
    mark = emulator.control.last_seq()
    assert app.acquire_token_for_client(scope)['token_source'] == 'identity_provider'
    assert app.acquire_token_for_client(scope)['token_source'] == 'cache'
    token_requests = [e for e in emulator.control.log(tenant['tenant_id'], since=mark) if e['kind'] == 'token']
    assert len(token_requests) == 1


def test_wrong_secret_is_invalid_client(emulator, tenant, make_app, scope):
    result = make_app('not-the-secret').acquire_token_for_client(scope)
    _assert_aadsts(result, 'invalid_client', 7000215)
    response = _post_token(emulator, tenant['tenant_id'], grant_type='client_credentials', client_id=tenant['client_id'],
                           client_secret='nope', scope=scope[0])
    assert response.status_code == 401


def test_unknown_app(emulator, tenant, make_app, scope):
    unknown = str(uuid.uuid4())
    result = make_app('whatever', client_id=unknown).acquire_token_for_client(scope)
    _assert_aadsts(result, 'unauthorized_client', 700016)
    assert unknown in result['error_description']


def test_unknown_tenant_at_token_endpoint(emulator, tenant, scope):
    response = _post_token(emulator, str(uuid.uuid4()), grant_type='client_credentials', client_id=tenant['client_id'],
                           client_secret=tenant['client_secret'], scope=scope[0])
    assert response.status_code == 400
    _assert_aadsts(response.json(), 'invalid_request', 90002)


def test_unknown_tenant_makes_msal_fail(emulator, tenant):
    with pytest.raises(ValueError):
        msal.ConfidentialClientApplication(tenant['client_id'], client_credential=tenant['client_secret'],
                                           authority='%s/%s' % (emulator.url, uuid.uuid4()), instance_discovery=False,
                                           verify=emulator.ca_bundle)


def test_malformed_tenant_and_common(emulator, tenant, scope):
    response = _post_token(emulator, 'not_a_tenant', grant_type='client_credentials', client_id=tenant['client_id'],
                           client_secret=tenant['client_secret'], scope=scope[0])
    _assert_aadsts(response.json(), 'invalid_request', 900023)
    response = _post_token(emulator, 'common', grant_type='client_credentials', client_id=tenant['client_id'],
                           client_secret=tenant['client_secret'], scope=scope[0])
    _assert_aadsts(response.json(), 'invalid_request', 50059)


@pytest.mark.parametrize('missing', ['grant_type', 'client_id', 'scope'])
def test_missing_parameter(emulator, tenant, scope, missing):
    form = {'grant_type': 'client_credentials', 'client_id': tenant['client_id'], 'client_secret': tenant['client_secret'], 'scope': scope[0]}
    del form[missing]
    response = _post_token(emulator, tenant['tenant_id'], **form)
    assert response.status_code == 400
    _assert_aadsts(response.json(), 'invalid_request', 900144)
    assert "'%s'" % missing in response.json()['error_description']


def test_no_credential_grant_and_scope_errors(emulator, tenant, scope):
    base = {'client_id': tenant['client_id'], 'scope': scope[0]}
    response = _post_token(emulator, tenant['tenant_id'], grant_type='client_credentials', **base)
    assert response.status_code == 401
    _assert_aadsts(response.json(), 'invalid_client', 7000216)
    response = _post_token(emulator, tenant['tenant_id'], grant_type='password', client_secret=tenant['client_secret'], **base)
    _assert_aadsts(response.json(), 'unsupported_grant_type', 70003)
    form = dict(base, grant_type='client_credentials', client_secret=tenant['client_secret'])
    response = _post_token(emulator, tenant['tenant_id'], **{**form, 'scope': emulator.url + '/Policy.Read.All'})
    _assert_aadsts(response.json(), 'invalid_scope', 1002012)
    response = _post_token(emulator, tenant['tenant_id'], **{**form, 'scope': 'https://graph.microsoft.com/.default'})
    _assert_aadsts(response.json(), 'invalid_resource', 500011)
    # a trailing slash on the resource works, as it does with Entra
    response = _post_token(emulator, tenant['tenant_id'], **{**form, 'scope': emulator.url + '//.default'})
    assert response.status_code == 200, response.text


def test_expired_secret(emulator, tenant, make_app, scope):
    app = tenant['apps']['expired-secret']
    result = make_app(app['client_secret'], client_id=app['client_id']).acquire_token_for_client(scope)
    _assert_aadsts(result, 'invalid_client', 7000222)


def test_domain_name_authority(emulator, make_app, scope):
    demo = emulator.demo  # the seed's own tenant answers to its domains too
    app = make_app(demo['client_secret'], client_id=demo['client_id'], authority=emulator.url + '/contoso.onmicrosoft.com')
    result = app.acquire_token_for_client(scope)
    assert _claims(result['access_token'])['tid'] == demo['tenant_id']


def test_localhost_alias(emulator, make_app, tenant):
    port = emulator.url.rsplit(':', 1)[1]
    base = 'https://localhost:%s' % port
    result = make_app(tenant['client_secret'], authority='%s/%s' % (base, tenant['tenant_id'])).acquire_token_for_client([base + '/.default'])
    assert _claims(result['access_token'])['aud'] == base
    response = requests.get(base + '/v1.0/policies/deviceRegistrationPolicy', headers={'Authorization': 'Bearer ' + result['access_token']},
                            verify=emulator.ca_bundle, timeout=30)
    assert response.status_code == 200
    assert response.json()['@odata.context'].startswith(base + '/v1.0/')


def test_instance_discovery_endpoint(emulator, make_app, tenant, scope):
    app = make_app(tenant['client_secret'], instance_discovery=emulator.url + '/common/discovery/instance')
    assert 'access_token' in app.acquire_token_for_client(scope)


# -- certificates ----------------------------------------------------------------------------------------------------

def _pem(tenant: dict) -> str:
    with open(tenant['certificate_path'], encoding='ascii') as handle:
        return handle.read()


def test_certificate_with_sha1_thumbprint(emulator, tenant, make_app, scope):
    result = make_app({'private_key': _pem(tenant), 'thumbprint': tenant['certificate_thumbprint']}).acquire_token_for_client(scope)
    assert 'access_token' in result, result
    assert _claims(result['access_token'])['appidacr'] == '2'
    entry = [e for e in emulator.control.log(tenant['tenant_id']) if e['kind'] == 'token'][-1]
    assert entry['credential'] == 'certificate'


def test_certificate_with_sha256_and_x5c(tenant, make_app, scope):
    pem = _pem(tenant)
    credential = {'private_key': pem, 'public_certificate': pem[pem.index('-----BEGIN CERTIFICATE-----'):]}
    assert 'access_token' in make_app(credential).acquire_token_for_client(scope)


def test_certificate_pfx_and_encrypted_pem(tenant, make_app, scope):
    credential = {'private_key_pfx_path': tenant['pfx_path'], 'passphrase': tenant['pfx_password']}
    assert 'access_token' in make_app(credential).acquire_token_for_client(scope)
    with open(tenant['encrypted_certificate_path'], encoding='ascii') as handle:
        encrypted = handle.read()
    assert 'ENCRYPTED PRIVATE KEY' in encrypted
    credential = {'private_key': encrypted, 'thumbprint': tenant['certificate_thumbprint'], 'passphrase': tenant['pfx_password']}
    assert 'access_token' in make_app(credential).acquire_token_for_client(scope)


def test_unregistered_certificate(tenant, make_app, scope):
    with open(tenant['unregistered_certificate_path'], encoding='ascii') as handle:
        pem = handle.read()
    credential = {'private_key': pem, 'public_certificate': pem[pem.index('-----BEGIN CERTIFICATE-----'):]}
    result = make_app(credential).acquire_token_for_client(scope)
    _assert_aadsts(result, 'invalid_client', 700027)
    assert 'The key was not found' in result['error_description']


def test_certificate_signed_by_other_key(tenant, make_app, scope):
    # the registered certificate's thumbprint, but a signature made with another key
    with open(tenant['unregistered_certificate_path'], encoding='ascii') as handle:
        other_key = handle.read()
    result = make_app({'private_key': other_key, 'thumbprint': tenant['certificate_thumbprint']}).acquire_token_for_client(scope)
    _assert_aadsts(result, 'invalid_client', 700027)
    assert 'signature validation' in result['error_description']


def _assertion(tenant: dict, emulator, **claims) -> str:
    with open(tenant['certificate_path'], encoding='ascii') as handle:
        key = handle.read()
    now = time.time()
    payload = {'aud': TOKEN_PATH % (emulator.url, tenant['tenant_id']), 'iss': tenant['client_id'], 'sub': tenant['client_id'],
               'exp': now + 600, 'iat': now, 'nbf': now, 'jti': str(uuid.uuid4())}
    payload.update(claims)
    payload = {name: value for name, value in payload.items() if value is not None}
    thumbprint = bytes.fromhex(tenant['certificate_thumbprint'])
    return jwt.encode(payload, key, algorithm='RS256', headers={'x5t': jwt.utils.base64url_encode(thumbprint).decode('ascii')})


@pytest.mark.parametrize('claims, status, code', [
    ({}, 200, None),
    ({'aud': 'https://login.microsoftonline.com/common/oauth2/v2.0/token'}, 401, 50012),
    ({'sub': str(uuid.uuid4())}, 401, 700021),
    ({'exp': time.time() - 60}, 401, 700024),
    ({'exp': None}, 400, 50027),
])
def test_certificate_assertion_claims(emulator, tenant, scope, claims, status, code):
    response = _post_token(emulator, tenant['tenant_id'], grant_type='client_credentials', client_id=tenant['client_id'], scope=scope[0],
                           client_assertion_type='urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
                           client_assertion=_assertion(tenant, emulator, **claims))
    assert response.status_code == status, response.text
    if code:
        _assert_aadsts(response.json(), response.json()['error'], code)


def test_secret_and_assertion_together(emulator, tenant, scope):
    response = _post_token(emulator, tenant['tenant_id'], grant_type='client_credentials', client_id=tenant['client_id'], scope=scope[0],
                           client_secret=tenant['client_secret'],
                           client_assertion_type='urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
                           client_assertion=_assertion(tenant, emulator))
    assert response.status_code == 400


# -- workload identity (federated credential) ------------------------------------------------------------------------

def test_federated_token_file(tenant, make_app, scope):
    def read_token() -> str:
        with open(tenant['federated_token_file'], encoding='ascii') as handle:
            return handle.read()
    result = make_app({'client_assertion': read_token}).acquire_token_for_client(scope)
    assert 'access_token' in result, result
    claims = jwt.decode(read_token(), options={'verify_signature': False})
    assert claims['aud'] == ['api://AzureADTokenExchange']
    assert claims['sub'] == tenant['apps']['automation']['federated_subject']


def test_federated_wrong_subject_and_expired(emulator, tenant, make_app, scope):
    wrong = emulator.control.federated_token('system:serviceaccount:other:intruder')
    result = make_app({'client_assertion': lambda: wrong}).acquire_token_for_client(scope)
    _assert_aadsts(result, 'invalid_request', 70021)
    assert 'system:serviceaccount:other:intruder' in result['error_description']
    expired = emulator.control.federated_token(tenant['apps']['automation']['federated_subject'], expires_in=-120)
    result = make_app({'client_assertion': lambda: expired}).acquire_token_for_client(scope)
    _assert_aadsts(result, 'invalid_client', 700024)
    wrong_audience = emulator.control.federated_token(tenant['apps']['automation']['federated_subject'], audience='api://other')
    result = make_app({'client_assertion': lambda: wrong_audience}).acquire_token_for_client(scope)
    _assert_aadsts(result, 'invalid_request', 70021)


def test_federated_token_signed_by_someone_else(emulator, tenant, make_app, scope):
    genuine = emulator.control.federated_token(tenant['apps']['automation']['federated_subject'])
    claims = jwt.decode(genuine, options={'verify_signature': False})
    with open(tenant['unregistered_certificate_path'], encoding='ascii') as handle:
        forged = jwt.encode(claims, handle.read(), algorithm='RS256', headers=jwt.get_unverified_header(genuine))
    result = make_app({'client_assertion': lambda: forged}).acquire_token_for_client(scope)
    _assert_aadsts(result, 'invalid_client', 700027)


def test_token_requests_are_logged_without_secrets(emulator, tenant, make_app, scope):
    mark = emulator.control.last_seq()
    make_app(tenant['client_secret']).acquire_token_for_client(scope)
    make_app('a-wrong-secret-value').acquire_token_for_client(scope)
    entries = emulator.control.log(tenant['tenant_id'], since=mark)
    tokens = [e for e in entries if e['kind'] == 'token']
    assert [e['status'] for e in tokens] == [200, 401]
    assert all(e['method'] == 'POST' and e['client_id'] == tenant['client_id'] and e.get('body') is None for e in tokens)
    text = repr(entries)
    assert tenant['client_secret'] not in text and 'a-wrong-secret-value' not in text
    assert [e['kind'] for e in entries].count('discovery') == 2
