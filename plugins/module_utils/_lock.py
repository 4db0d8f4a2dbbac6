# Copyright (c) entra.autopilot contributors
# Simplified BSD License (see LICENSES/BSD-2-Clause.txt or https://opensource.org/licenses/BSD-2-Clause)
# SPDX-License-Identifier: BSD-2-Clause

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the entra.autopilot collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.

"""A per-tenant file lock, so that parallel runs on one machine do not lose each other's policy updates.

Graph has no ETag for the device registration policy: two read-modify-writes that overlap lose one update.
Every run on this machine that changes the same tenant (same Graph endpoint and tenant id) takes the same
``flock`` first. Runs on other machines are not serialised by it.

``ensure_private_folder`` and ``file_lock`` also guard the token cache (``_token_cache.py``), which lives in the same
private folder.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import random
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ansible_collections.entra.autopilot.plugins.module_utils._errors import EntraError

DEFAULT_TIMEOUT = 300.0


def lock_folder() -> str:
    """The private folder of this user's locks (and token cache files)."""
    return os.path.join(tempfile.gettempdir(), 'entra.autopilot-%d' % os.getuid())


def lock_path(graph_endpoint: str, tenant_id: str | None) -> str:
    """The lock file of one tenant: the same endpoint and tenant (any case, trailing slash) give the same file."""
    key = '%s|%s' % (graph_endpoint.strip().rstrip('/').lower(), (tenant_id or '').strip().lower())
    return os.path.join(lock_folder(), hashlib.sha256(key.encode('utf-8')).hexdigest() + '.lock')


def ensure_private_folder(folder: str, what: str = 'lock folder') -> None:
    """Create ``folder`` (mode 0700) or check the existing one: a real directory of this user that nobody else can write.

    ``what`` names the folder in messages ("lock folder", "token cache folder").
    """
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise EntraError('Cannot create the %s %s: %s.' % (what, folder, exc.strerror)) from None
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode):
        raise EntraError('The %s %s is not a directory (it may be a link planted by someone else). '
                         'Remove it and run the task again.' % (what, folder))
    if info.st_uid != os.getuid():
        raise EntraError('The %s %s belongs to another user (uid %d), so its files cannot be trusted. '
                         'Remove it, or set TMPDIR to a private folder.' % (what, folder, info.st_uid))
    if info.st_mode & 0o022:
        raise EntraError('The %s %s can be written by other users (mode %o), so its files cannot be trusted. '
                         'Run "chmod 700 %s" or remove it.' % (what, folder, stat.S_IMODE(info.st_mode), folder))


@contextmanager
def file_lock(path: str, timeout: float, busy: str) -> Iterator[None]:
    """Hold the exclusive ``flock`` of ``path`` (created 0600, links refused); ``busy`` is the message when it stays taken."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise EntraError('Cannot open the lock file %s: %s.' % (path, exc.strerror)) from None
    try:
        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise EntraError('Cannot lock %s: %s.' % (path, exc.strerror)) from None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise EntraError(busy)
            # jittered, so that many waiting forks do not poll in step
            time.sleep(min(remaining, delay * random.uniform(0.5, 1.5)))
            delay = min(delay * 2, 0.25)
        yield
    finally:
        os.close(fd)  # releases the lock


@contextmanager
def tenant_lock(graph_endpoint: str, tenant_id: str | None, timeout: float = DEFAULT_TIMEOUT) -> Iterator[None]:
    """Hold the exclusive lock of one tenant; raise EntraError when it is not free within ``timeout`` seconds."""
    ensure_private_folder(lock_folder())
    path = lock_path(graph_endpoint, tenant_id)
    busy = ('Gave up after %g seconds waiting for another entra.autopilot task on this machine to finish changing the device '
            'registration policy of tenant %s (lock file %s). Run the task again when it is done; if no such task runs, '
            'another process holds the lock.' % (timeout, tenant_id or '(from the access token)', path))
    with file_lock(path, timeout, busy):
        yield
