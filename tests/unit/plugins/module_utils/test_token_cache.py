# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The persistent token cache (token_cache: true): keys, file safety, and fewer token requests against the emulator."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid

import pytest

from ansible_collections.entra.autopilot.plugins.module_utils._auth import AuthError, acquire_token, build_session, settings_from_params
from ansible_collections.entra.autopilot.plugins.module_utils._errors import EntraError
from ansible_collections.entra.autopilot.plugins.module_utils._graph_client import GraphClient
from ansible_collections.entra.autopilot.plugins.module_utils._lock import lock_folder
from ansible_collections.entra.autopilot.plugins.module_utils._token_cache import (
    CachedResponse,
    cache_path,
    http_cache_from_json,
    http_cache_to_json,
)

KEY = ('client_secret', 'https://login.microsoftonline.com', '11111111-2222-4333-8444-555555555555',
       '99999999-8888-4777-8666-555555555555', 'https://graph.microsoft.com/.default', 'fingerprint')


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """Point tempfile (and child processes) at a fresh temp folder, so each test starts with an empty cache."""
    monkeypatch.setattr(tempfile, 'tempdir', str(tmp_path))
    monkeypatch.setenv('TMPDIR', str(tmp_path))
    return tmp_path


# --- keys and the http cache encoding (no I/O) ----------------------------------------------------------------------

def test_every_key_part_makes_its_own_file_and_the_name_reveals_nothing(private_tmp):
    path = cache_path(KEY)
    assert os.path.dirname(path) == lock_folder()
    assert cache_path([part.upper() + ' ' for part in KEY]) == path  # case and blanks do not matter
    others = {cache_path(KEY[:index] + ('other',) + KEY[index + 1:]) for index in range(len(KEY))}
    assert len(others) == len(KEY) and path not in others
    name = os.path.basename(path)
    assert all(part.lower() not in name for part in KEY)


def msal_like_http_cache(now: int) -> dict:
    """What msal's _ExpiringMapping holds after a discovery GET, a failed GET and a throttled token POST."""
    get_ok, get_failed, post = 'GET https://login/t/v2.0/.well-known/openid-configuration hash=1 2xx', 'GET https://x hash=2 2xx', \
        'POST https://login/t/oauth2/v2.0/token client_id=c scope=s hash=3 429/5xx/Retry-After'
    return {
        get_ok: CachedResponse(200, '{"token_endpoint": "https://login/t/oauth2/v2.0/token"}',
                               {'Content-Type': 'application/json', 'Set-Cookie': 'fpc=abc'}),
        get_failed: CachedResponse(500, 'oops', {}),
        post: CachedResponse(429, '{"error": "temporarily_unavailable"}', {'retry-after': '5'}),
        '_index_': ([[now + 86400, now, get_ok], [now + 60, now, get_failed], [now + 5, now, post]],
                    {get_ok: [now + 86400, now], get_failed: [now + 60, now], post: [now + 5, now]}),
    }


def test_only_successful_discovery_gets_are_kept_and_they_read_back():
    now = int(time.time())
    saved = http_cache_to_json(msal_like_http_cache(now))
    assert list(saved['responses']) == ['GET https://login/t/v2.0/.well-known/openid-configuration hash=1 2xx']
    assert saved['responses'][next(iter(saved['responses']))]['headers'] == {'content-type': 'application/json'}  # no cookie
    loaded = http_cache_from_json(json.loads(json.dumps(saved)))
    key = next(iter(saved['responses']))
    assert loaded[key].status_code == 200 and 'token_endpoint' in loaded[key].text
    assert loaded['_index_'] == ([[now + 86400, now, key]], {key: [now + 86400, now]})
    assert http_cache_to_json(loaded) == saved


@pytest.mark.parametrize('data', [None, {}, [], 'text', {'index': 1}, {'index': [[], {}], 'responses': {'k': {'status_code': 'x'}}},
                                  {'index': [[[1, 2]], {}], 'responses': {}}])
def test_anything_unexpected_reads_as_an_empty_http_cache(data):
    assert http_cache_from_json(data) == {}


def test_an_index_shape_msal_might_change_to_keeps_nothing():
    assert http_cache_to_json({'_index_': 'something new', 'GET x': CachedResponse(200, '{}', {})}) == {}


# --- against the emulator --------------------------------------------------------------------------------------------

def connection(tenant, **options) -> dict:
    values = {'tenant_id': tenant['tenant_id'], 'client_id': tenant['client_id'], 'client_secret': tenant['client_secret'],
              'authority_host': tenant['authority_host'], 'graph_endpoint': tenant['graph_endpoint'], 'ca_bundle': tenant['ca_bundle'],
              'token_cache': True}
    values.update(options)
    return values


def token(values: dict) -> str:
    """One module run's token: new settings, session and msal app, as in a new process."""
    settings = settings_from_params(values)
    return acquire_token(settings, build_session(settings))


def logins(emulator, tenant, since) -> list[str]:
    return [entry['kind'] for entry in emulator.control.log(tenant=tenant['tenant_id'], since=since) if entry['kind'] in ('token', 'discovery')]


def claims(access_token: str) -> dict:
    payload = access_token.split('.')[1]
    return json.loads(base64.urlsafe_b64decode(payload + '=' * (-len(payload) % 4)))


def cache_files() -> list[str]:
    return sorted(name for name in os.listdir(lock_folder()) if name.endswith('.json'))


def test_later_runs_take_the_token_and_the_discovery_from_the_cache(emulator, tenant, private_tmp):
    since = emulator.control.last_seq()
    first = token(connection(tenant))
    assert logins(emulator, tenant, since) == ['discovery', 'token']
    since = emulator.control.last_seq()
    assert [token(connection(tenant)) for _run in range(3)] == [first] * 3
    assert logins(emulator, tenant, since) == []
    # and Graph takes the cached token
    settings = settings_from_params(connection(tenant))
    client = GraphClient(build_session(settings), settings.graph_endpoint, 'v1.0', first, timeout=10, max_retries=0)
    assert client.get('policies/deviceRegistrationPolicy')['id'] == 'deviceRegistrationPolicy'


def test_without_the_option_every_run_asks_and_nothing_is_stored(emulator, tenant, private_tmp):
    since = emulator.control.last_seq()
    for _run in range(3):
        token(connection(tenant, token_cache=False))
    assert logins(emulator, tenant, since) == ['discovery', 'token'] * 3
    assert not os.path.exists(lock_folder()) or cache_files() == []


def test_the_cache_is_private_and_holds_no_credential(emulator, tenant, private_tmp):
    token(connection(tenant))
    folder = lock_folder()
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    [name] = cache_files()
    path = os.path.join(folder, name)
    info = os.lstat(path)
    assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == os.getuid()
    with open(path, encoding='utf-8') as handle:
        text = handle.read()
    assert tenant['client_secret'] not in text and tenant['tenant_id'] not in name
    assert set(json.loads(text)) == {'version', 'tokens', 'http'}


def test_tenants_never_share_a_cache(emulator, tenant, private_tmp):
    other = emulator.control.new_tenant(str(uuid.uuid4()), seed='demo')  # the same app (client id) in another tenant
    try:
        assert other['client_id'] == tenant['client_id']
        first = token(connection(tenant))
        since = emulator.control.last_seq()
        second = token(connection(other, client_secret=other['client_secret']))
        assert logins(emulator, other, since) == ['discovery', 'token']
        assert claims(first)['tid'] == tenant['tenant_id'] and claims(second)['tid'] == other['tenant_id']
        assert len(cache_files()) == 2
        assert token(connection(tenant)) == first and token(connection(other, client_secret=other['client_secret'])) == second
    finally:
        emulator.control.delete_tenant(other['tenant_id'])


def test_a_wrong_or_rotated_secret_never_meets_the_cached_token(emulator, tenant, private_tmp):
    token(connection(tenant))
    with pytest.raises(AuthError, match='AADSTS7000215'):
        token(connection(tenant, client_secret='emu~NotTheSecret.1234567890abc'))


def test_the_certificate_and_the_secret_of_one_app_have_their_own_files(emulator, tenant, private_tmp):
    by_secret = token(connection(tenant))
    by_certificate = token(connection(tenant, client_secret=None, client_certificate_path=tenant['certificate_path']))
    assert by_secret != by_certificate and len(cache_files()) == 2


def test_an_unchanged_cache_is_not_written_again(emulator, tenant, private_tmp):
    token(connection(tenant))
    [name] = cache_files()
    before = os.stat(os.path.join(lock_folder(), name))
    token(connection(tenant))
    after = os.stat(os.path.join(lock_folder(), name))
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


@pytest.mark.parametrize('damage', ['garbage', 'readable by others', 'link'])
def test_a_damaged_or_untrusted_file_is_ignored_and_replaced(emulator, tenant, private_tmp, damage):
    token(connection(tenant))
    [name] = cache_files()
    path = os.path.join(lock_folder(), name)
    if damage == 'garbage':
        with open(path, 'w', encoding='utf-8') as handle:
            handle.write('{not json')
    elif damage == 'readable by others':
        os.chmod(path, 0o644)
    else:
        os.replace(path, path + '.elsewhere')
        os.symlink(path + '.elsewhere', path)
    since = emulator.control.last_seq()
    token(connection(tenant))
    assert 'token' in logins(emulator, tenant, since)
    info = os.lstat(path)
    assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600
    with open(path, encoding='utf-8') as handle:
        assert json.load(handle)['version'] == 1


def test_a_folder_others_can_write_is_refused(emulator, tenant, private_tmp):
    os.mkdir(lock_folder(), 0o700)
    os.chmod(lock_folder(), 0o777)
    with pytest.raises(EntraError, match='token cache folder .* can be written by other users'):
        token(connection(tenant))


def test_the_access_token_method_needs_no_cache(emulator, tenant, private_tmp):
    given = emulator.control.token(tenant['tenant_id'], tenant['client_id'])
    assert token({'access_token': given, 'graph_endpoint': tenant['graph_endpoint'], 'token_cache': True}) == given
    assert not os.path.exists(lock_folder())


# Forks of one play: processes that start at the same moment, each with its own settings, session and msal app.
FORK = textwrap.dedent('''
    import json, os, sys, time
    from ansible_collections.entra.autopilot.plugins.module_utils._auth import acquire_token, build_session, settings_from_params
    values, go = json.loads(sys.argv[1]), sys.argv[2]
    open('%s.ready.%d' % (go, os.getpid()), 'w').close()
    while not os.path.exists(go):
        time.sleep(0.005)
    settings = settings_from_params(values)
    token = acquire_token(settings, build_session(settings))
    print(len(token))  # never the token itself
''')


def test_concurrent_forks_make_one_token_request_and_keep_the_file_whole(emulator, tenant, private_tmp):
    forks = 8
    go = str(private_tmp / 'go')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path for path in sys.path if path))
    since = emulator.control.last_seq()
    children = [subprocess.Popen([sys.executable, '-c', FORK, json.dumps(connection(tenant)), go], env=env,  # pylint: disable=consider-using-with
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _fork in range(forks)]
    deadline = time.monotonic() + 60
    while len([name for name in os.listdir(private_tmp) if name.startswith('go.ready.')]) < forks:
        assert time.monotonic() < deadline, 'the forks did not start'
        time.sleep(0.01)
    open(go, 'w', encoding='utf-8').close()
    outputs = [child.communicate(timeout=120) for child in children]
    assert [child.returncode for child in children] == [0] * forks, [err for _out, err in outputs]
    assert logins(emulator, tenant, since) == ['discovery', 'token']
    [name] = cache_files()
    with open(os.path.join(lock_folder(), name), encoding='utf-8') as handle:
        assert json.load(handle)['tokens']['AccessToken']
    assert not [name for name in os.listdir(lock_folder()) if name.endswith('.tmp')]
