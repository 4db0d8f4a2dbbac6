# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Managed identity endpoints (App Service and IMDS) through msal.ManagedIdentityClient, selected by environment variables."""

from __future__ import annotations

import jwt
import msal
import pytest
import requests

MSAL_SOURCE_VARIABLES = ('IDENTITY_ENDPOINT', 'IDENTITY_HEADER', 'IDENTITY_SERVER_THUMBPRINT', 'MSI_ENDPOINT', 'MSI_SECRET', 'IMDS_ENDPOINT',
                         'AZURE_POD_IDENTITY_AUTHORITY_HOST')


@pytest.fixture
def mi_env(monkeypatch):
    for name in MSAL_SOURCE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _client(emulator, identity) -> msal.ManagedIdentityClient:
    session = requests.Session()
    session.verify = emulator.ca_bundle
    return msal.ManagedIdentityClient(identity, http_client=session)


@pytest.mark.parametrize('source', ['app_service', 'imds'])
@pytest.mark.parametrize('assigned', ['system', 'user'])
def test_managed_identity_token_reads_graph(emulator, tenant, mi_env, source, assigned):
    settings = tenant['managed_identity']
    if source == 'app_service':
        mi_env.setenv('IDENTITY_ENDPOINT', settings['identity_endpoint'])
        mi_env.setenv('IDENTITY_HEADER', settings['identity_header'])
    else:
        mi_env.setenv('AZURE_POD_IDENTITY_AUTHORITY_HOST', settings['imds_host'])
    if assigned == 'system':
        identity = msal.SystemAssignedManagedIdentity()
        expected = settings['system_assigned_client_id']
    else:
        identity = msal.UserAssignedManagedIdentity(client_id=settings['user_assigned_client_id'])
        expected = settings['user_assigned_client_id']
    mark = emulator.control.last_seq()
    result = _client(emulator, identity).acquire_token_for_client(resource=emulator.url)
    assert 'access_token' in result, result
    assert 3000 < result['expires_in'] <= 3600
    claims = jwt.decode(result['access_token'], options={'verify_signature': False})
    assert claims['appid'] == expected and claims['tid'] == tenant['tenant_id'] and claims['aud'] == emulator.url
    assert 'xms_mirid' in claims
    response = requests.get(emulator.url + '/v1.0/policies/deviceRegistrationPolicy', verify=emulator.ca_bundle, timeout=30,
                            headers={'Authorization': 'Bearer ' + result['access_token']})
    assert response.status_code == 200
    entries = [e for e in emulator.control.log(tenant['tenant_id'], since=mark) if e['kind'] == 'msi']
    assert len(entries) == 1 and entries[0]['status'] == 200 and entries[0]['client_id'] == expected
    assert settings['identity_header'] not in repr(entries)


def test_app_service_errors(emulator, tenant):
    settings = tenant['managed_identity']
    url = settings['identity_endpoint']
    good = {'api-version': '2019-08-01', 'resource': emulator.url}

    def call(params, header=settings['identity_header']):
        headers = {'X-IDENTITY-HEADER': header} if header else {}
        return requests.get(url, params=params, headers=headers, verify=emulator.ca_bundle, timeout=30)

    response = call(good)
    assert response.status_code == 200 and int(response.json()['expires_on']) > 0
    assert call(good, header='wrong').status_code == 401
    assert call(good, header=None).status_code == 401
    assert call({'api-version': '2019-08-01'}).status_code == 400
    response = call(dict(good, client_id='00000000-0000-0000-0000-000000000000'))
    assert response.status_code == 400 and 'No User Assigned' in response.json()['message']
    assert call(dict(good, resource='https://graph.microsoft.com')).status_code == 500


def test_imds_errors(emulator, tenant):
    url = tenant['managed_identity']['imds_host'] + '/metadata/identity/oauth2/token'
    good = {'api-version': '2018-02-01', 'resource': emulator.url}

    def call(params, metadata='true'):
        headers = {'Metadata': metadata} if metadata else {}
        return requests.get(url, params=params, headers=headers, verify=emulator.ca_bundle, timeout=30)

    body = call(good).json()
    assert body['access_token'] and int(body['expires_in']) > 3000
    response = call(good, metadata=None)
    assert response.status_code == 400 and response.json()['error_description'] == 'Required metadata header not specified'
    assert call(dict(good, client_id='00000000-0000-0000-0000-000000000000')).json()['error_description'] == 'Identity not found'
    assert call(dict(good, resource='https://management.azure.com/')).json()['error'] == 'invalid_resource'


def test_msal_reports_identity_errors(emulator, tenant, mi_env):
    settings = tenant['managed_identity']
    mi_env.setenv('IDENTITY_ENDPOINT', settings['identity_endpoint'])
    mi_env.setenv('IDENTITY_HEADER', 'not-the-header')
    result = _client(emulator, msal.SystemAssignedManagedIdentity()).acquire_token_for_client(resource=emulator.url)
    assert 'access_token' not in result and '401' in result['error_description']
