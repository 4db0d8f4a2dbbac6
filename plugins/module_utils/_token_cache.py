# Copyright (c) entra.autopilot contributors
# Simplified BSD License (see LICENSES/BSD-2-Clause.txt or https://opensource.org/licenses/BSD-2-Clause)
# SPDX-License-Identifier: BSD-2-Clause

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the entra.autopilot collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.

"""The opt-in persistent msal token cache (``token_cache: true``), shared by the tasks and forks of one controller.

Every module run is a process of its own, so msal's in-memory cache never outlives one task. With the option on,
the token and msal's discovery answers are kept in one file per key (login host, tenant, client, Graph scope, auth
method and a fingerprint of the credential) in the user's private folder (``_lock.lock_folder()``, mode 0700).
A file is only read and written under its own ``flock``, and replaced atomically, so concurrent forks never see a
half-written file; the first fork of a tenant asks for the token and the others wait and take it from the cache.
The file holds access tokens: it is created 0600, never printed, and a file that is not a private regular file of
this user is ignored (and replaced).
"""

from __future__ import annotations

import hashlib
import heapq
import json
import os
import stat
import tempfile
import typing as t
from collections.abc import Iterator
from contextlib import contextmanager

from ansible_collections.entra.autopilot.plugins.module_utils._errors import EntraError
from ansible_collections.entra.autopilot.plugins.module_utils._lock import ensure_private_folder, file_lock, lock_folder

try:
    import msal
    import msal.exceptions
except ImportError:
    HAS_MSAL = False
else:
    HAS_MSAL = True

CACHE_VERSION = 1
LOCK_TIMEOUT = 120.0
# msal's _ExpiringMapping (the http_cache) keeps its expiry index under this key: ([[expires_at, created_at, key]], {key: [...]})
_HTTP_INDEX = '_index_'


def cache_path(key_parts: t.Iterable[str]) -> str:
    """The cache file of one key; the parts are hashed, so the name reveals nothing (not even the tenant)."""
    key = '|'.join([str(CACHE_VERSION), *(part.strip().lower() for part in key_parts)])
    return os.path.join(lock_folder(), 'token-%s.json' % hashlib.sha256(key.encode('utf-8')).hexdigest())


def credential_fingerprint(secret: str | bytes) -> str:
    """A one-way digest of a credential for the cache key: a rotated or wrong secret never meets the tokens of another."""
    data = secret.encode('utf-8') if isinstance(secret, str) else secret
    return hashlib.sha256(data).hexdigest()


class CachedResponse:
    """A discovery answer read back from the file, in the shape msal's http cache stores (status, text, headers)."""

    def __init__(self, status_code: int, text: str, headers: dict[str, str]) -> None:
        self.status_code = status_code
        self.text = text
        self.headers = headers

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise msal.exceptions.MsalServiceError('HTTP Error: %d' % self.status_code, error=None, error_description=None)


def http_cache_to_json(mapping: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """The successful discovery GETs of msal's http cache, as JSON; error and token answers are never kept."""
    responses: dict[str, dict[str, t.Any]] = {}
    for key, value in mapping.items():
        status = getattr(value, 'status_code', None)
        text = getattr(value, 'text', None)
        if isinstance(key, str) and key.startswith('GET ') and isinstance(status, int) and 200 <= status < 300 and isinstance(text, str):
            headers = getattr(value, 'headers', None) or {}
            responses[key] = {'status_code': status, 'text': text,
                              'headers': {str(name).lower(): str(item) for name, item in headers.items() if str(name).lower() != 'set-cookie'}}
    try:
        sequence, timestamps = mapping.get(_HTTP_INDEX) or ([], {})
        entries = [[int(expires), int(created), key] for expires, created, key in sequence if key in responses]
        times = {key: [int(times[0]), int(times[1])] for key, times in timestamps.items() if key in responses}
    except (TypeError, ValueError, IndexError):
        return {}  # an index shape this code does not know: keep nothing rather than something msal cannot read
    kept = {key: value for key, value in responses.items() if key in times}
    return {'index': [entries, times], 'responses': kept} if kept else {}


def http_cache_from_json(data: t.Any) -> dict[str, t.Any]:
    """msal's http cache mapping from ``http_cache_to_json`` output; anything unexpected gives an empty cache."""
    if not isinstance(data, dict) or not data:
        return {}
    try:
        entries, times = data['index']
        responses = {str(key): CachedResponse(int(value['status_code']), str(value['text']), dict(value['headers']))
                     for key, value in data['responses'].items()}
        sequence = [[int(expires), int(created), str(key)] for expires, created, key in entries if key in responses]
        timestamps = {str(key): [int(value[0]), int(value[1])] for key, value in times.items() if key in responses}
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return {}
    heapq.heapify(sequence)
    mapping: dict[str, t.Any] = dict(responses)
    mapping[_HTTP_INDEX] = (sequence, timestamps)
    return mapping


def _read_private(path: str) -> t.Any:
    """The JSON of ``path`` when it is a regular file of this user that nobody else can read or write, else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None  # absent (the first run), or a link
    with os.fdopen(fd, 'rb') as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
            return None
        try:
            return json.loads(handle.read().decode('utf-8'))
        except (ValueError, UnicodeDecodeError):
            return None  # a damaged file is replaced by the next save


def _write_private(path: str, data: dict[str, t.Any]) -> None:
    """Replace ``path`` atomically with a new 0600 file, so a reader never sees half of it."""
    folder = os.path.dirname(path)
    try:
        fd, temp = tempfile.mkstemp(prefix='.token-', suffix='.tmp', dir=folder)  # mkstemp creates it 0600
    except OSError as exc:
        raise EntraError('Cannot write the token cache in %s: %s.' % (folder, exc.strerror)) from None
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as handle:
            json.dump(data, handle)
        os.replace(temp, path)
    except OSError as exc:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise EntraError('Cannot write the token cache file %s: %s.' % (path, exc.strerror)) from None


class TokenCacheFile:
    """msal's ``SerializableTokenCache`` and http cache of one key, loaded from and saved to its file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.tokens = msal.SerializableTokenCache()
        self.http: dict[str, t.Any] = {}
        self._http_loaded: dict[str, t.Any] = {}

    def load(self) -> None:
        data = _read_private(self.path)
        if not isinstance(data, dict) or data.get('version') != CACHE_VERSION:
            return
        try:
            self.tokens.deserialize(json.dumps(data.get('tokens') or {}))
        except (ValueError, TypeError, AttributeError):
            self.tokens = msal.SerializableTokenCache()
        self.http = http_cache_from_json(data.get('http'))
        self._http_loaded = http_cache_to_json(self.http)

    def save(self) -> None:
        """Write the file when msal added or removed something (``has_state_changed`` is read before ``serialize()``)."""
        tokens_changed = self.tokens.has_state_changed
        http = http_cache_to_json(self.http)
        if not tokens_changed and http == self._http_loaded:
            return
        _write_private(self.path, {'version': CACHE_VERSION, 'tokens': json.loads(self.tokens.serialize()), 'http': http})
        self._http_loaded = http


@contextmanager
def open_token_cache(key_parts: t.Iterable[str], timeout: float = LOCK_TIMEOUT) -> Iterator[TokenCacheFile]:
    """The cache of one key, held under its lock for the token acquisition; saved when the block ends without error."""
    folder = lock_folder()
    ensure_private_folder(folder, 'token cache folder')
    path = cache_path(key_parts)
    busy = ('Gave up after %g seconds waiting for another entra.autopilot task on this machine to finish its token request '
            '(token cache lock %s.lock). Run the task again; if no such task runs, another process holds the lock.' % (timeout, path))
    with file_lock(path + '.lock', timeout, busy):
        cache = TokenCacheFile(path)
        cache.load()
        yield cache
        cache.save()
