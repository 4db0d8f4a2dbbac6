# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The shared argument spec, the empty-env fallback and ``EntraModule`` (option resolution, no_log, failures)."""

from __future__ import annotations

import contextlib
import json
import typing as t
from unittest import mock

import pytest
import yaml
from ansible.module_utils import basic
from ansible.module_utils.basic import AnsibleFallbackNotFound

from ansible_collections.entra.autopilot.plugins.doc_fragments.attributes import ModuleDocFragment as Attributes
from ansible_collections.entra.autopilot.plugins.doc_fragments.connection import ModuleDocFragment as Connection
from ansible_collections.entra.autopilot.plugins.module_utils._errors import EntraError
from ansible_collections.entra.autopilot.plugins.module_utils._graph_client import GraphClient
from ansible_collections.entra.autopilot.plugins.module_utils._module import EntraModule, connection_argument_spec, env_fallback_nonempty

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core < 2.19
    @contextlib.contextmanager  # type: ignore[no-redef]
    def patch_module_args(args: dict[str, t.Any] | None = None) -> t.Iterator[None]:
        with mock.patch.object(basic, '_ANSIBLE_ARGS', json.dumps({'ANSIBLE_MODULE_ARGS': args or {}}).encode()):
            yield

ENV_NAMES = ('AZURE_TENANT_ID', 'AZURE_TENANT', 'AZURE_CLIENT_ID', 'AZURE_CLIENT_SECRET', 'AZURE_SECRET', 'AZURE_CLIENT_CERTIFICATE_PATH',
             'AZURE_CLIENT_CERTIFICATE_PASSWORD', 'AZURE_FEDERATED_TOKEN_FILE', 'ENTRA_ACCESS_TOKEN', 'ENTRA_AUTH_METHOD',
             'AZURE_CLOUD_ENVIRONMENT', 'AZURE_AUTHORITY_HOST', 'ENTRA_GRAPH_ENDPOINT')
TENANT = '11111111-2222-3333-4444-555555555555'
CLIENT = '99999999-8888-7777-6666-555555555555'
SECRET = 'Sup3r~Secret.Value_123'


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


_ARGS_STACK = contextlib.ExitStack()


@pytest.fixture(autouse=True)
def module_args_scope():
    """Module arguments stay patched until the test ends (exit_json needs them on ansible-core 2.19+)."""
    with _ARGS_STACK:
        yield


def make_module(args: dict[str, t.Any], spec: dict[str, t.Any] | None = None) -> EntraModule:
    _ARGS_STACK.enter_context(patch_module_args(args))
    return EntraModule(argument_spec=spec or {}, supports_check_mode=True)


def run_flow(module: EntraModule, flow, capsys) -> tuple[int, dict[str, t.Any]]:
    with pytest.raises(SystemExit) as exit_info:
        module.run(flow)
    return exit_info.value.code, json.loads(capsys.readouterr().out)


# --- env_fallback_nonempty -------------------------------------------------------------------------------------------

def test_env_fallback_nonempty_skips_empty_values(monkeypatch):
    monkeypatch.setenv('AZURE_TENANT_ID', '')
    monkeypatch.setenv('AZURE_TENANT', 'from-awx')
    assert env_fallback_nonempty('AZURE_TENANT_ID', 'AZURE_TENANT') == 'from-awx'
    monkeypatch.setenv('AZURE_TENANT_ID', 'first')
    assert env_fallback_nonempty('AZURE_TENANT_ID', 'AZURE_TENANT') == 'first'
    monkeypatch.setenv('AZURE_TENANT_ID', '  ')
    monkeypatch.setenv('AZURE_TENANT', '')
    with pytest.raises(AnsibleFallbackNotFound):
        env_fallback_nonempty('AZURE_TENANT_ID', 'AZURE_TENANT')


# --- argument spec and its documentation ---------------------------------------------------------------------------

EXPECTED_SPEC = {
    'tenant_id': ('str', None, ['AZURE_TENANT_ID', 'AZURE_TENANT'], False),
    'client_id': ('str', None, ['AZURE_CLIENT_ID'], False),
    'client_secret': ('str', None, ['AZURE_CLIENT_SECRET', 'AZURE_SECRET'], True),
    'client_certificate_path': ('path', None, ['AZURE_CLIENT_CERTIFICATE_PATH'], False),
    'client_certificate_password': ('str', None, ['AZURE_CLIENT_CERTIFICATE_PASSWORD'], True),
    'federated_token_file': ('path', None, ['AZURE_FEDERATED_TOKEN_FILE'], False),
    'access_token': ('str', None, ['ENTRA_ACCESS_TOKEN'], True),
    'auth_method': ('str', 'auto', ['ENTRA_AUTH_METHOD'], False),
    'cloud': ('str', 'public', ['AZURE_CLOUD_ENVIRONMENT'], False),
    'authority_host': ('str', None, ['AZURE_AUTHORITY_HOST'], False),
    'graph_endpoint': ('str', None, ['ENTRA_GRAPH_ENDPOINT'], False),
    'api_version': ('str', 'v1.0', None, False),
    'validate_certs': ('bool', True, None, False),
    'ca_bundle': ('path', None, None, False),
    'timeout': ('int', 30, None, False),
    'max_retries': ('int', 5, None, False),
    'token_cache': ('bool', False, None, False),
}


def test_argument_spec_is_exactly_the_issue_table():
    spec = connection_argument_spec()
    assert list(spec) == list(EXPECTED_SPEC)
    for name, (type_, default, env, no_log) in EXPECTED_SPEC.items():
        option = spec[name]
        assert option['type'] == type_, name
        assert option.get('default') == default, name
        assert bool(option.get('no_log')) is no_log, name
        if env is None:
            assert 'fallback' not in option, name
        else:
            function, names = option['fallback']
            assert function is env_fallback_nonempty and names == env, name
    assert spec['auth_method']['choices'] == ['auto', 'client_secret', 'client_certificate', 'workload_identity', 'managed_identity',
                                              'access_token']
    assert spec['api_version']['choices'] == ['v1.0', 'beta']
    assert 'choices' not in spec['cloud']


def test_argument_spec_is_a_fresh_copy():
    connection_argument_spec()['tenant_id']['type'] = 'int'
    assert connection_argument_spec()['tenant_id']['type'] == 'str'


def test_doc_fragment_matches_the_spec_and_names_every_environment_variable():
    doc = yaml.safe_load(Connection.DOCUMENTATION)
    spec = connection_argument_spec()
    assert list(doc['options']) == list(spec)
    for name, option in spec.items():
        documented = doc['options'][name]
        assert documented['type'] == option['type'], name
        assert documented.get('default') == option.get('default'), name
        assert documented.get('choices') == option.get('choices'), name
        text = ' '.join(documented['description'])
        for env in option.get('fallback', (None, []))[1]:
            assert f'E({env})' in text, (name, env)
    assert 'REQUESTS_CA_BUNDLE' in ' '.join(doc['options']['ca_bundle']['description'])
    assert any('empty environment variable counts as unset' in note for note in doc['notes'])


def test_attribute_fragments():
    base = yaml.safe_load(Attributes.DOCUMENTATION)['attributes']
    assert set(base) == {'check_mode', 'diff_mode', 'idempotent'}
    group = yaml.safe_load(Attributes.ACTION_GROUP)['attributes']['action_group']
    assert group['membership'] == ['entra.autopilot.entra']
    info = yaml.safe_load(Attributes.INFO_MODULE)['attributes']
    assert info['check_mode']['support'] == 'full' and info['diff_mode']['support'] == 'N/A'


# --- EntraModule ---------------------------------------------------------------------------------------------------

def test_module_merges_its_own_options():
    module = make_module({'access_token': 'tok', 'name': 'x'}, {'name': {'type': 'str'}})
    assert module.params['name'] == 'x'
    assert module.params['auth_method'] == 'auto'


def test_environment_fallbacks_in_order_and_empty_values_ignored(monkeypatch):
    monkeypatch.setenv('AZURE_TENANT_ID', '')
    monkeypatch.setenv('AZURE_TENANT', TENANT)
    monkeypatch.setenv('AZURE_CLIENT_ID', CLIENT)
    monkeypatch.setenv('AZURE_CLIENT_SECRET', '')
    monkeypatch.setenv('AZURE_SECRET', SECRET)
    monkeypatch.setenv('AZURE_CLOUD_ENVIRONMENT', 'AzureUSGovernment')
    monkeypatch.setenv('ENTRA_ACCESS_TOKEN', '')
    monkeypatch.setenv('ENTRA_AUTH_METHOD', '')
    module = make_module({})
    settings = module.auth_settings()
    assert (settings.method, settings.tenant_id, settings.client_id, settings.client_secret) == ('client_secret', TENANT, CLIENT, SECRET)
    assert settings.cloud == 'usgov'
    assert settings.graph_endpoint == 'https://graph.microsoft.us'
    assert SECRET in module.no_log_values


def test_task_options_win_over_environment(monkeypatch):
    monkeypatch.setenv('AZURE_TENANT_ID', 'env-tenant')
    monkeypatch.setenv('ENTRA_AUTH_METHOD', 'managed_identity')
    module = make_module({'tenant_id': TENANT, 'client_id': CLIENT, 'client_secret': SECRET, 'auth_method': 'client_secret'})
    settings = module.auth_settings()
    assert (settings.tenant_id, settings.method) == (TENANT, 'client_secret')


def test_auth_method_from_environment(monkeypatch):
    monkeypatch.setenv('ENTRA_AUTH_METHOD', 'managed_identity')
    assert make_module({}).auth_settings().method == 'managed_identity'


def test_missing_credential_fails_with_one_line(capsys):
    module = make_module({'client_id': CLIENT, 'client_secret': SECRET})
    rc, result = run_flow(module, lambda: {'client': module.graph_client()}, capsys)
    assert rc == 1 and result['failed'] is True
    assert result['msg'] == ('auth_method=client_secret needs tenant_id (AZURE_TENANT_ID or AZURE_TENANT) '
                             '(the directory (tenant) id or a verified domain).')
    assert SECRET not in json.dumps(result)


def test_bad_cloud_fails(capsys, monkeypatch):
    monkeypatch.setenv('AZURE_CLOUD_ENVIRONMENT', 'AzureGermanCloud')
    module = make_module({'access_token': 'tok'})
    rc, result = run_flow(module, lambda: {'client': module.graph_client()}, capsys)
    assert rc == 1
    assert result['msg'].startswith("Unknown cloud 'AzureGermanCloud' in cloud (AZURE_CLOUD_ENVIRONMENT)")


def test_graph_client_with_access_token_registers_token_and_warns_without_verification(capsys):
    module = make_module({'access_token': 'Bearer eyJ.token.value', 'validate_certs': False, 'graph_endpoint': 'graph.microsoft.us',
                          'api_version': 'beta', 'timeout': 9, 'max_retries': 2})
    client = module.graph_client()
    assert isinstance(client, GraphClient)
    assert client is module.graph_client()
    assert client.base_url == 'https://graph.microsoft.us/beta/'
    assert (client.timeout, client.max_retries) == (9, 2)
    assert client.session.entra_verify is False
    assert 'eyJ.token.value' in module.no_log_values
    rc, result = run_flow(module, lambda: {'changed': False, 'echo': 'token eyJ.token.value'}, capsys)
    assert rc == 0
    assert 'eyJ.token.value' not in json.dumps(result)
    assert 'validate_certs is false' in json.dumps(result.get('warnings'))  # plain strings before 2.19, event objects after


def test_run_turns_entra_error_into_fail_json_with_details(capsys):
    module = make_module({'access_token': 'tok'})

    def flow():
        raise EntraError('Something clear failed. Fix: set x.', entries=['a', 'b'])

    rc, result = run_flow(module, flow, capsys)
    assert rc == 1
    assert result['msg'] == 'Something clear failed. Fix: set x.'
    assert result['entries'] == ['a', 'b']


def test_run_exits_with_the_flow_result(capsys):
    module = make_module({'access_token': 'tok'})
    rc, result = run_flow(module, lambda: {'changed': True, 'policy': {'id': 'deviceRegistrationPolicy'}}, capsys)
    assert rc == 0
    assert result['changed'] is True and result['policy'] == {'id': 'deviceRegistrationPolicy'}


def test_missing_library_fails_with_missing_required_lib(capsys, monkeypatch):
    from ansible_collections.entra.autopilot.plugins.module_utils import _module
    monkeypatch.setattr(_module, 'HAS_MSAL', False)
    monkeypatch.setattr(_module, 'MSAL_IMPORT_ERROR', 'Traceback: No module named msal')
    with pytest.raises(SystemExit):
        make_module({'access_token': 'tok'})
    result = json.loads(capsys.readouterr().out)
    assert 'Failed to import the required Python library (msal)' in result['msg']


# --- a whole module run against the emulator ------------------------------------------------------------------------

def emulator_args(tenant, **options):
    args = {'tenant_id': tenant['tenant_id'], 'client_id': tenant['client_id'], 'authority_host': tenant['authority_host'],
            'graph_endpoint': tenant['graph_endpoint'], 'ca_bundle': tenant['ca_bundle']}
    args.update(options)
    return args


def read_policy_flow(module):
    return lambda: {'changed': False, 'policy': module.graph_client().get('policies/deviceRegistrationPolicy')}


def test_module_run_with_environment_credentials(emulator, tenant, monkeypatch, capsys):
    monkeypatch.setenv('AZURE_TENANT_ID', '')
    monkeypatch.setenv('AZURE_TENANT', tenant['tenant_id'])
    monkeypatch.setenv('AZURE_CLIENT_ID', tenant['client_id'])
    monkeypatch.setenv('AZURE_SECRET', tenant['client_secret'])
    monkeypatch.setenv('AZURE_AUTHORITY_HOST', tenant['authority_host'].replace('https://', ''))
    monkeypatch.setenv('ENTRA_GRAPH_ENDPOINT', tenant['graph_endpoint'])
    since = emulator.control.last_seq()
    module = make_module({'ca_bundle': tenant['ca_bundle']})
    client = module.graph_client()
    assert client._token in module.no_log_values  # pylint: disable=protected-access
    assert tenant['client_secret'] in module.no_log_values
    rc, result = run_flow(module, read_policy_flow(module), capsys)
    assert rc == 0 and result['policy']['id'] == 'deviceRegistrationPolicy'
    kinds = [entry['kind'] for entry in emulator.control.log(tenant=tenant['tenant_id'], since=since)]
    assert kinds == ['discovery', 'token', 'graph']


def test_module_fails_cleanly_on_a_wrong_secret(tenant, capsys):
    wrong = 'emu~NotTheRightSecretValue.0987654321'
    module = make_module(emulator_args(tenant, client_secret=wrong))
    rc, result = run_flow(module, read_policy_flow(module), capsys)
    assert rc == 1
    assert 'AADSTS7000215 invalid_client: Invalid client secret provided.' in result['msg']
    assert 'aad_error' in result and result['aad_error'] == 'invalid_client'
    output = json.dumps(result)
    assert wrong not in output and tenant['client_secret'] not in output
    assert 'Traceback' not in output


def test_module_fails_cleanly_on_a_missing_permission(tenant, capsys):
    module = make_module(emulator_args(tenant, client_id=tenant['readonly_client_id'], client_secret=tenant['readonly_client_secret']))

    def write():
        module.graph_client().put('policies/deviceRegistrationPolicy', {'userDeviceQuota': 50})
        return {'changed': True}

    rc, result = run_flow(module, write, capsys)
    assert rc == 1
    assert result['msg'].startswith('Graph PUT policies/deviceRegistrationPolicy failed: HTTP 403 Authorization_RequestDenied')
    assert 'Policy.ReadWrite.DeviceConfiguration' in result['msg']
    assert (result['status'], result['error_code']) == (403, 'Authorization_RequestDenied') and result['request_id']
    assert tenant['readonly_client_secret'] not in json.dumps(result)


def test_module_fails_cleanly_on_an_untrusted_ca(tenant, capsys):
    module = make_module(emulator_args(tenant, ca_bundle=None, client_secret=tenant['client_secret']))
    rc, result = run_flow(module, read_policy_flow(module), capsys)
    assert rc == 1
    assert result['msg'].startswith(f"The TLS certificate of {tenant['authority_host']} is not trusted")
    assert tenant['client_secret'] not in json.dumps(result)
