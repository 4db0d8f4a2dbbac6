# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""First end-to-end check of the emulator fixtures: msal login with a secret, policy GET and PUT."""

from __future__ import annotations

import msal
import requests


def test_secret_login_then_policy_get_and_put(emulator, tenant):
    app = msal.ConfidentialClientApplication(tenant['client_id'], client_credential=tenant['client_secret'],
                                             authority='%s/%s' % (emulator.url, tenant['tenant_id']), instance_discovery=False,
                                             verify=emulator.ca_bundle)
    result = app.acquire_token_for_client([emulator.url + '/.default'])
    assert 'access_token' in result, result
    session = requests.Session()
    session.verify = emulator.ca_bundle
    session.headers['Authorization'] = 'Bearer ' + result['access_token']
    url = emulator.url + '/v1.0/policies/deviceRegistrationPolicy'
    policy = session.get(url).json()
    assert policy['userDeviceQuota'] == 50
    body = {name: policy[name] for name in ('userDeviceQuota', 'multiFactorAuthConfiguration', 'azureADRegistration', 'azureADJoin',
                                            'localAdminPassword')}
    body['userDeviceQuota'] = 20
    response = session.put(url, json=body)
    assert response.status_code == 200, response.text
    assert session.get(url).json()['userDeviceQuota'] == 20
    assert emulator.control.state(tenant['tenant_id'])['policy']['userDeviceQuota'] == 20
