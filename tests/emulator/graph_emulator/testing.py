# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Helpers for tests that talk to the emulator with requests (the emulator itself never imports this)."""

from __future__ import annotations

from typing import Any

import requests

POLICY_PATH = 'policies/deviceRegistrationPolicy'
UPDATABLE = ('userDeviceQuota', 'multiFactorAuthConfiguration', 'azureADRegistration', 'azureADJoin', 'localAdminPassword')

# Object ids of the demo seed (tests/emulator/seeds/demo.json), by a short name.
DEMO_IDS = {
    'adele': '4dd3bc65-5f06-4ca8-bf94-a0859120d58f',          # AdeleV@contoso.com, technician, registering local admin
    'alex': '158bda81-2b50-4c46-92a9-ed995f53b63b',           # AlexW@contoso.com
    'megan': 'cd4e460e-f211-4a48-827a-82c054036213',          # MeganB@contoso.com, listed in allowedToJoin
    'lee': '9cd870e2-ef02-40e7-b066-9823ee0c4d61',            # LeeG@contoso.com, technician
    'pradeep': '20e6202d-2add-4f6d-b86f-345a2a0aece7',        # PradeepG@contoso.com, technician
    'isaiah': 'f2192059-8386-4224-988c-f56a64f72cab',         # IsaiahL@contoso.com
    'patti': '7a6782e6-7f8a-492a-abad-6e299393eeaa',          # PattiF@contoso.com
    'johanna': '5ca73b40-5b7b-4df0-83b9-961bd9630b47',        # JohannaL@contoso.com
    'sean': '7137aef4-9941-4bbf-bbed-ea73157f52d5',           # sean.o'brien@contoso.com (apostrophe)
    'kiosk': 'd42b785b-9221-4c96-bc65-de9dd9b6b483',          # $kiosk-setup@contoso.com (starts with $)
    'jane': '270af36b-e7a1-4df2-beb1-458efe93723e',           # jane.doe_fabrikam.com#EXT#@contoso.onmicrosoft.com (guest)
    'nestor': '3bc529e0-aa56-4baa-9cd5-f8e9e6032677',         # NestorW@contoso.com
    'grady': '1c5160fe-57da-465f-ba04-5b5b5f0cf369',          # GradyA@contoso.com
    'diego_deleted': '845f4493-b41a-4e1b-8640-d31c1282cb20',  # DiegoS@contoso.com, deleted, still in allowedToJoin
    'technicians': '6cd0d409-6780-4876-ae1c-fea043980712',    # "Autopilot Technicians" (users), in allowedToJoin
    'devices_group': '51d6b0b6-77aa-46b0-8eac-4b9b28c2be21',  # "Autopilot Devices" (only devices)
    'sales_m365': 'b90d807a-5b82-4a55-b9ee-0bd0c35496d7',     # "Sales" (Microsoft 365 group, mail sales@contoso.com)
    'sales_security': '2557f051-d282-4080-a7bd-06ef462b1ac3',  # "Sales" (security group, no mail)
    'oreilly': '6b529564-0901-45fa-ba3f-3a02922191a1',        # "O'Reilly Project Team" (apostrophe)
    'it_department': 'b2fe566c-04e8-4286-a869-2f3e88ba3715',  # "IT Department" (users and a nested group)
    'empty_group': 'f02dc7c3-cf61-4eb6-a958-0540920d282e',    # "Autopilot Pilot Ring" (no members)
    'device': 'c2667822-e0dc-4166-bdbe-a406e377bc31',         # device DESKTOP-7Q2K4LM
}


class GraphSession:
    """requests against the emulator's Graph with one bearer token; paths are relative to /<version>/."""

    def __init__(self, base_url: str, ca_bundle: str, token: str | None, version: str = 'v1.0') -> None:
        self.base_url = base_url
        self.version = version
        self.session = requests.Session()
        self.session.verify = ca_bundle
        if token:
            self.session.headers['Authorization'] = 'Bearer ' + token

    def url(self, path: str) -> str:
        return '%s/%s/%s' % (self.base_url, self.version, path.lstrip('/'))

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault('timeout', 30)
        return self.session.request(method, self.url(path), **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request('GET', path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request('PUT', path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request('POST', path, **kwargs)

    def policy(self) -> dict:
        response = self.get(POLICY_PATH)
        if response.status_code != 200:
            raise AssertionError('policy GET failed: %s %s' % (response.status_code, response.text))
        return response.json()

    def put_body(self) -> dict:
        """The current policy's updatable part: what a correct client sends back."""
        policy = self.policy()
        return {name: policy[name] for name in UPDATABLE}
