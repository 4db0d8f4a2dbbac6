# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The per-tenant file lock, with real processes contending for it."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

import pytest

from ansible_collections.entra.autopilot.plugins.module_utils._errors import EntraError
from ansible_collections.entra.autopilot.plugins.module_utils._lock import lock_folder, lock_path, tenant_lock

ENDPOINT = 'https://graph.microsoft.com'
TENANT = '00000000-0000-4000-8000-00000000abcd'

# A child process. 'hold': take the lock until told to release it. 'increment' / 'increment-unlocked': once every
# child is ready, read-modify-write a counter file (with or without the lock), slowly enough for a race.
CHILD = textwrap.dedent('''
    import contextlib, os, sys, time
    from ansible_collections.entra.autopilot.plugins.module_utils._lock import tenant_lock
    endpoint, tenant, mode, arg = sys.argv[1:5]
    if mode.startswith('increment'):
        open('%s.ready.%d' % (arg, os.getpid()), 'w').close()
        while not os.path.exists(arg + '.go'):
            time.sleep(0.005)
    lock = contextlib.nullcontext() if mode == 'increment-unlocked' else tenant_lock(endpoint, tenant, timeout=60)
    with lock:
        if mode == 'hold':
            open(arg + '.held', 'w').close()
            while not os.path.exists(arg + '.release'):
                time.sleep(0.01)
        else:
            value = int(open(arg).read())
            time.sleep(0.05)
            with open(arg, 'w') as counter:
                counter.write(str(value + 1))
''')


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """Point tempfile (and child processes) at a fresh temp folder."""
    monkeypatch.setattr(tempfile, 'tempdir', str(tmp_path))
    monkeypatch.setenv('TMPDIR', str(tmp_path))
    return tmp_path


def child(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path for path in sys.path if path))
    return subprocess.Popen([sys.executable, '-c', CHILD, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(path: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        assert time.monotonic() < deadline, 'the child process did not take the lock'
        time.sleep(0.01)


def test_lock_file_is_keyed_by_endpoint_and_tenant(private_tmp):
    assert lock_folder() == str(private_tmp / ('entra.autopilot-%d' % os.getuid()))
    assert lock_path(ENDPOINT, TENANT) == lock_path(ENDPOINT.upper() + '/', TENANT.upper())
    assert lock_path(ENDPOINT, TENANT) != lock_path(ENDPOINT, TENANT.replace('a', 'b'))
    assert lock_path(ENDPOINT, TENANT) != lock_path('https://graph.microsoft.us', TENANT)
    assert lock_path(ENDPOINT, None) == lock_path(ENDPOINT, '')
    assert os.path.dirname(lock_path(ENDPOINT, TENANT)) == lock_folder()
    assert TENANT not in lock_path(ENDPOINT, TENANT)


def test_folder_is_created_private(private_tmp):
    with tenant_lock(ENDPOINT, TENANT):
        info = os.lstat(lock_folder())
        assert stat.S_ISDIR(info.st_mode)
        assert stat.S_IMODE(info.st_mode) & 0o077 == 0
        assert info.st_uid == os.getuid()
        assert stat.S_IMODE(os.stat(lock_path(ENDPOINT, TENANT)).st_mode) & 0o077 == 0


def test_second_process_waits_and_times_out_then_gets_the_lock(private_tmp):
    marker = str(private_tmp / 'holder')
    holder = child(ENDPOINT, TENANT, 'hold', marker)
    try:
        wait_for(marker + '.held')
        started = time.monotonic()
        with pytest.raises(EntraError) as caught:
            with tenant_lock(ENDPOINT, TENANT, timeout=0.5):
                pytest.fail('the lock was taken while another process held it')
        waited = time.monotonic() - started
        assert 0.5 <= waited < 5
        assert 'Gave up after 0.5 seconds' in str(caught.value) and TENANT in str(caught.value)
        # another tenant is not blocked
        with tenant_lock(ENDPOINT, 'another-tenant', timeout=0.5):
            pass
    finally:
        open(marker + '.release', 'w').close()
        holder.wait(30)
    assert holder.returncode == 0, holder.stderr.read()
    with tenant_lock(ENDPOINT, TENANT, timeout=5):
        pass


def test_waiting_process_gets_the_lock_when_released(private_tmp):
    marker = str(private_tmp / 'holder')
    holder = child(ENDPOINT, TENANT, 'hold', marker)
    wait_for(marker + '.held')
    released_at = []

    def release_soon() -> None:
        time.sleep(0.3)
        released_at.append(time.monotonic())
        open(marker + '.release', 'w').close()

    thread = threading.Thread(target=release_soon)
    thread.start()
    with tenant_lock(ENDPOINT, TENANT, timeout=30):
        acquired = time.monotonic()
    thread.join()
    holder.wait(30)
    assert released_at and acquired >= released_at[0]


def run_incrementers(folder, mode: str, count: int = 8) -> int:
    counter = folder / 'counter'
    counter.write_text('0')
    workers = [child(ENDPOINT, TENANT, mode, str(counter)) for _worker in range(count)]
    deadline = time.monotonic() + 60
    while len(list(folder.glob('counter.ready.*'))) < count:
        assert time.monotonic() < deadline and all(worker.poll() is None for worker in workers), 'a child failed to start'
        time.sleep(0.01)
    (folder / 'counter.go').touch()
    for worker in workers:
        worker.wait(60)
        assert worker.returncode == 0, worker.stderr.read()
    return int(counter.read_text())


def test_contending_processes_lose_no_update(private_tmp):
    assert run_incrementers(private_tmp, 'increment') == 8


def test_without_the_lock_the_same_processes_lose_updates(private_tmp):
    # the control for the test above: it would catch a lock that does not lock
    assert run_incrementers(private_tmp, 'increment-unlocked') < 8


@pytest.mark.parametrize('mode', [0o777, 0o770, 0o722])
def test_folder_writable_by_others_is_refused(private_tmp, mode):
    os.mkdir(lock_folder())
    os.chmod(lock_folder(), mode)
    with pytest.raises(EntraError, match='can be written by other users'):
        with tenant_lock(ENDPOINT, TENANT):
            pass


def test_folder_that_is_a_link_is_refused(private_tmp):
    elsewhere = private_tmp / 'elsewhere'
    elsewhere.mkdir(mode=0o700)
    os.symlink(elsewhere, lock_folder())
    with pytest.raises(EntraError, match='not a directory'):
        with tenant_lock(ENDPOINT, TENANT):
            pass


@pytest.mark.skipif(os.getuid() != 0, reason='only root can give a folder to another user')
def test_folder_of_another_user_is_refused(private_tmp):
    os.mkdir(lock_folder(), 0o700)
    os.chown(lock_folder(), 12345, -1)
    with pytest.raises(EntraError, match='belongs to another user'):
        with tenant_lock(ENDPOINT, TENANT):
            pass


def test_lock_is_released_on_error(private_tmp):
    with pytest.raises(RuntimeError):
        with tenant_lock(ENDPOINT, TENANT):
            raise RuntimeError('boom')
    with tenant_lock(ENDPOINT, TENANT, timeout=0):
        pass
