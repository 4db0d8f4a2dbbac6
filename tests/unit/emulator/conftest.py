# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Helpers for the emulator's own tests: msal apps and Graph sessions against a tenant of the running emulator."""

from __future__ import annotations

from typing import Any, Callable

import msal
import pytest
from graph_emulator.testing import GraphSession


@pytest.fixture
def make_app(emulator: Any, tenant: dict) -> Callable[..., msal.ConfidentialClientApplication]:
    """A new msal app (so msal's own error cache never hides a request) for the tenant, or another authority."""
    def make(credential: Any, client_id: str | None = None, authority: str | None = None, **kwargs: Any) -> msal.ConfidentialClientApplication:
        return msal.ConfidentialClientApplication(client_id or tenant['client_id'], client_credential=credential,
                                                  authority=authority or '%s/%s' % (emulator.url, tenant['tenant_id']),
                                                  instance_discovery=kwargs.pop('instance_discovery', False), verify=emulator.ca_bundle,
                                                  **kwargs)
    return make


@pytest.fixture
def scope(emulator: Any) -> list[str]:
    return [emulator.url + '/.default']


@pytest.fixture
def graph_as(emulator: Any, tenant: dict, make_app: Callable[..., Any], scope: list[str]) -> Callable[..., GraphSession]:
    """graph_as('readonly') -> a Graph session with a token that app got from the token endpoint with its secret."""
    def make(app_name: str = 'automation', version: str = 'v1.0') -> GraphSession:
        app = tenant['apps'][app_name]
        result = make_app(app['client_secret'], client_id=app['client_id']).acquire_token_for_client(scope)
        assert 'access_token' in result, result
        return GraphSession(emulator.url, emulator.ca_bundle, result['access_token'], version)
    return make


@pytest.fixture
def graph(graph_as: Callable[..., GraphSession]) -> GraphSession:
    """Graph as the demo automation app (every permission)."""
    return graph_as('automation')
