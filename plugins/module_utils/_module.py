# Copyright (c) entra.autopilot contributors
# Simplified BSD License (see LICENSES/BSD-2-Clause.txt or https://opensource.org/licenses/BSD-2-Clause)
# SPDX-License-Identifier: BSD-2-Clause

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the entra.autopilot collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.

"""The shared connection options and ``EntraModule``, the ``AnsibleModule`` every module of the collection uses."""

from __future__ import annotations

import copy
import os
import typing as t

from ansible.module_utils.basic import AnsibleFallbackNotFound, AnsibleModule, missing_required_lib

from ansible_collections.entra.autopilot.plugins.module_utils._auth import (
    HAS_MSAL,
    HAS_REQUESTS,
    METHODS,
    MSAL_IMPORT_ERROR,
    OPTION_ENV,
    REQUESTS_IMPORT_ERROR,
    AuthSettings,
    acquire_token,
    build_session,
    settings_from_params,
)
from ansible_collections.entra.autopilot.plugins.module_utils._errors import EntraError
from ansible_collections.entra.autopilot.plugins.module_utils._graph_client import GraphClient


def env_fallback_nonempty(*names: str, **kwargs: t.Any) -> str:
    """Like ``env_fallback``: the first of ``names`` set in the environment, but an empty value counts as unset.

    AWX exports empty strings for credential fields left blank; they must not hide the next variable or the default.
    """
    for name in names:
        value = os.environ.get(name)
        if value is not None and value.strip():
            return value
    raise AnsibleFallbackNotFound


def _env(option: str) -> tuple[t.Any, list[str]]:
    return (env_fallback_nonempty, list(OPTION_ENV[option]))


_CONNECTION_ARGUMENT_SPEC: dict[str, dict[str, t.Any]] = {
    'tenant_id': {'type': 'str', 'fallback': _env('tenant_id')},
    'client_id': {'type': 'str', 'fallback': _env('client_id')},
    'client_secret': {'type': 'str', 'no_log': True, 'fallback': _env('client_secret')},
    'client_certificate_path': {'type': 'path', 'fallback': _env('client_certificate_path')},
    'client_certificate_password': {'type': 'str', 'no_log': True, 'fallback': _env('client_certificate_password')},
    'federated_token_file': {'type': 'path', 'fallback': _env('federated_token_file')},
    'access_token': {'type': 'str', 'no_log': True, 'fallback': _env('access_token')},
    'auth_method': {'type': 'str', 'default': 'auto', 'choices': ['auto', *METHODS], 'fallback': _env('auth_method')},
    # No ``choices``: the environment may hold AWX's names (AzureCloud, ...); settings_from_params maps and checks them.
    'cloud': {'type': 'str', 'default': 'public', 'fallback': _env('cloud')},
    'authority_host': {'type': 'str', 'fallback': _env('authority_host')},
    'graph_endpoint': {'type': 'str', 'fallback': _env('graph_endpoint')},
    'api_version': {'type': 'str', 'default': 'v1.0', 'choices': ['v1.0', 'beta']},
    'validate_certs': {'type': 'bool', 'default': True},
    'ca_bundle': {'type': 'path'},
    'timeout': {'type': 'int', 'default': 30},
    'max_retries': {'type': 'int', 'default': 5},
    'token_cache': {'type': 'bool', 'default': False},
}


def connection_argument_spec() -> dict[str, dict[str, t.Any]]:
    """The connection and auth options shared by every module (a fresh copy)."""
    return copy.deepcopy(_CONNECTION_ARGUMENT_SPEC)


class EntraModule(AnsibleModule):
    """``AnsibleModule`` with the connection options, library checks and a lazily built ``GraphClient``.

    A module passes its own ``argument_spec``, then calls ``module.run(flow)``; ``flow`` calls ``module.graph_client()``
    when it needs Graph, and returns the result dict. Any ``EntraError`` becomes one ``fail_json``.
    """

    def __init__(self, argument_spec: dict[str, t.Any], **kwargs: t.Any) -> None:
        spec = connection_argument_spec()
        spec.update(argument_spec)
        super().__init__(argument_spec=spec, **kwargs)
        if not HAS_REQUESTS:
            self.fail_json(msg=missing_required_lib('requests'), exception=REQUESTS_IMPORT_ERROR)
        if not HAS_MSAL:
            self.fail_json(msg=missing_required_lib('msal'), exception=MSAL_IMPORT_ERROR)
        self._auth_settings: AuthSettings | None = None
        self._graph_client: GraphClient | None = None

    def auth_settings(self) -> AuthSettings:
        """The validated connection settings (no I/O); raises ``EntraError`` naming the option to fix."""
        if self._auth_settings is None:
            settings = settings_from_params(self.params)
            self.no_log_values.update(settings.secrets())
            self._auth_settings = settings
        return self._auth_settings

    def graph_client(self) -> GraphClient:
        """The Graph client of this run: settings, session, token (registered as a no_log value), client."""
        if self._graph_client is None:
            settings = self.auth_settings()
            if settings.verify is False:
                self.warn('validate_certs is false: TLS certificates of the login and Graph endpoints are not verified.')
            session = build_session(settings)
            token = acquire_token(settings, session)
            self.no_log_values.add(token)
            self._graph_client = GraphClient(session, settings.graph_endpoint, settings.api_version, token,
                                             timeout=settings.timeout, max_retries=settings.max_retries)
        return self._graph_client

    def run(self, flow: t.Callable[[], dict[str, t.Any]]) -> t.NoReturn:
        """Run ``flow`` and exit with its result; an ``EntraError`` fails the task with its one-line message."""
        try:
            result = flow()
        except EntraError as exc:
            self.fail_json(msg=str(exc), **exc.details)
        self.exit_json(**result)
