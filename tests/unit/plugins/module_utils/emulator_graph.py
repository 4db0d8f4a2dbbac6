# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A GraphClient for a tenant of the running emulator, logged in the way the modules log in (real msal, HTTPS)."""

from __future__ import annotations

from typing import Any

from ansible_collections.entra.autopilot.plugins.module_utils._auth import acquire_token, build_session, settings_from_params
from ansible_collections.entra.autopilot.plugins.module_utils._graph_client import GraphClient


def graph_client(emulator: Any, tenant: dict, app: str | None = None, *, max_retries: int | None = None,
                 timeout: int | None = None) -> GraphClient:
    """``tenant``'s automation app (or its app named ``app``) with a client secret; the options' defaults otherwise."""
    credentials = tenant['apps'][app] if app else tenant
    settings = settings_from_params({'tenant_id': tenant['tenant_id'], 'client_id': credentials['client_id'],
                                     'client_secret': credentials['client_secret'], 'authority_host': emulator.url,
                                     'graph_endpoint': emulator.url, 'ca_bundle': emulator.ca_bundle})
    session = build_session(settings)
    return GraphClient(session, settings.graph_endpoint, settings.api_version, acquire_token(settings, session),
                       timeout=settings.timeout if timeout is None else timeout,
                       max_retries=settings.max_retries if max_retries is None else max_retries)
