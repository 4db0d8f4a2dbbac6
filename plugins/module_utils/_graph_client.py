# Copyright (c) entra.autopilot contributors
# Simplified BSD License (see LICENSES/BSD-2-Clause.txt or https://opensource.org/licenses/BSD-2-Clause)
# SPDX-License-Identifier: BSD-2-Clause

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the entra.autopilot collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.

"""Microsoft Graph over ``requests``: retries, paging, JSON batching (chunks sent in parallel) and readable errors."""

from __future__ import annotations

import email.utils
import functools
import math
import random
import queue
import re
import threading
import time
import typing as t
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urlsplit

from ansible_collections.entra.autopilot.plugins.module_utils._auth import describe_transport_error
from ansible_collections.entra.autopilot.plugins.module_utils._errors import EntraError

try:
    import requests
except ImportError:
    HAS_REQUESTS = False
else:
    HAS_REQUESTS = True

# Graph throttling (429) and transient unavailability (503, 504): retry after Retry-After or a backoff.
# https://learn.microsoft.com/en-us/graph/throttling, https://learn.microsoft.com/en-us/graph/errors
RETRY_STATUSES = frozenset({429, 503, 504})
BATCH_LIMIT = 20  # https://learn.microsoft.com/en-us/graph/json-batching
# Calls in flight at once for one run (batch chunks, getByIds pages): enough to hide the round trip of 250 chunks
# (5,000 names), few enough to stay far below Graph's per-app concurrency and throttling limits.
PARALLEL_CALLS = 8
BACKOFF_BASE = 1.0
BACKOFF_CAP = 32.0


class GraphError(EntraError):
    """A Graph call that failed; ``str()`` is one line with status, code, message and request-id."""

    def __init__(self, msg: str, *, status: int | None = None, code: str | None = None, graph_message: str | None = None,
                 request_id: str | None = None, method: str = '', path: str = '', client_request_id: str | None = None) -> None:
        details: dict[str, t.Any] = {}
        if status is not None:
            details['status'] = status
        if code:
            details['error_code'] = code
        if request_id:
            details['request_id'] = request_id
        super().__init__(msg, **details)
        self.status = status
        self.code = code
        self.graph_message = graph_message
        self.request_id = request_id
        self.method = method
        self.path = path
        self.client_request_id = client_request_id


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: integer or fractional seconds, or an HTTP-date."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def backoff_delay(attempt: int, rng: t.Callable[[], float] = random.random) -> float:
    """Exponential backoff with jitter: between half and all of ``BACKOFF_BASE * 2**attempt`` (capped)."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * (2 ** min(attempt, 16)))
    return ceiling / 2 + rng() * ceiling / 2


def _header(headers: t.Mapping[str, t.Any] | None, name: str) -> t.Any:
    if not headers:
        return None
    wanted = name.lower()
    for key, value in headers.items():
        if str(key).lower() == wanted:
            return value
    return None


def _relative_path(path: str) -> str:
    """``path`` as shown in messages: relative to the API version, without the query."""
    parts = urlsplit(path)
    rel = parts.path if parts.scheme else path.split('?', 1)[0]
    rel = rel.lstrip('/')
    rel = re.sub(r'^(?:.*?/)?(?:v1\.0|beta)/', '', rel, count=1) if parts.scheme else re.sub(r'^(?:v1\.0|beta)/', '', rel, count=1)
    return rel


# Permission each call needs, named in 403 messages (graph-contract.md section 2 and 5).
_POLICY_READ = ('The app needs the Microsoft Graph application permission Policy.Read.DeviceConfiguration '
                '(or, delegated, that scope plus a role such as Global Reader or Cloud Device Administrator).')
_POLICY_WRITE = ('The app needs the application permission Policy.ReadWrite.DeviceConfiguration '
                 '(or, delegated, the Cloud Device Administrator role).')


def permission_hint(method: str, path: str) -> str | None:
    """The sentence a 403 message adds: which permission the call needs."""
    rel = _relative_path(path).lower()
    verb = method.upper()
    if rel == 'policies/deviceregistrationpolicy':
        return _POLICY_READ if verb == 'GET' else _POLICY_WRITE
    if rel.startswith('directoryobjects/getbyids'):
        permission = 'Directory.Read.All'
    elif rel.startswith('groups/') and '/members' in rel:
        permission = 'GroupMember.Read.All'
    elif rel.startswith('groups'):
        permission = 'Group.Read.All'
    elif rel.startswith('users/') and rel.endswith('/checkmembergroups'):
        # transitive group membership of a user: reading users is not enough
        permission = 'User.Read.All and GroupMember.Read.All (or Directory.Read.All)'
    elif rel.startswith('users'):
        permission = 'User.Read.All'
    else:
        return None
    plural = 's' if ' and ' in permission else ''
    return f'The app needs the Microsoft Graph application permission{plural} {permission} (admin consent granted).'


_UNAUTHORIZED_HINT = ('The access token was rejected (expired, issued for another tenant or cloud, or not for Microsoft Graph): '
                      'check tenant_id, cloud / graph_endpoint and, if you pass one, access_token.')


def _one_line(text: str, limit: int = 300) -> str:
    text = ' '.join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + '...'


def graph_error(method: str, path: str, status: int, body: t.Any, headers: t.Mapping[str, t.Any] | None = None, *,
                reason: str = '', client_request_id: str | None = None, gave_up: str = '') -> GraphError:
    """Turn a Graph error answer (status, body, headers) into one ``GraphError`` line."""
    code = message = None
    request_id = _header(headers, 'request-id')
    if isinstance(body, dict) and isinstance(body.get('error'), dict):
        error = body['error']
        code = error.get('code') and str(error['code'])
        message = error.get('message') and _one_line(error['message'])
        inner = error.get('innerError') or error.get('innererror')
        if isinstance(inner, dict) and not request_id:
            request_id = inner.get('request-id')
    elif isinstance(body, (str, bytes)) and body:
        text = body.decode('utf-8', 'replace') if isinstance(body, bytes) else body
        message = _one_line(re.sub(r'<[^>]+>', ' ', text), 200) or None
    shown = _relative_path(path)
    line = f'Graph {method.upper()} {shown} failed: HTTP {status}'
    if code:
        line += f' {code}'
    if message:
        line += f': {message}'
    elif reason:
        line += f' {reason}'
    if request_id:
        line += f' (request-id {request_id})'
    line = line.rstrip('.') + '.' if not line.endswith(')') else line + '.'
    if gave_up:
        line += f' {gave_up}'
    if status == 401:
        line += f' {_UNAUTHORIZED_HINT}'
    elif status == 403:
        hint = permission_hint(method, path)
        if hint:
            line += f' {hint}'
    return GraphError(line, status=status, code=code, graph_message=message, request_id=request_id, method=method.upper(),
                      path=shown, client_request_id=client_request_id)


@dataclass
class BatchRequest:
    """One request of a ``$batch``; ``url`` is relative to the API version (``users/{id}``)."""

    id: str
    method: str
    url: str
    headers: dict[str, str] | None = None
    body: t.Any = None

    def to_json(self) -> dict[str, t.Any]:
        item: dict[str, t.Any] = {'id': self.id, 'method': self.method.upper(), 'url': '/' + self.url.lstrip('/')}
        headers = dict(self.headers or {})
        if self.body is not None:
            item['body'] = self.body
            if _header(headers, 'Content-Type') is None:
                headers['Content-Type'] = 'application/json'
        if headers:
            item['headers'] = headers
        return item


@dataclass
class BatchResponse:
    """One answer of a ``$batch``, with its own status."""

    id: str
    status: int
    headers: dict[str, t.Any]
    body: t.Any
    method: str = ''
    url: str = ''

    def error(self) -> GraphError | None:
        if self.status < 400:
            return None
        return graph_error(self.method or 'GET', self.url, self.status, self.body, self.headers)


@dataclass
class _Attempts:
    """Retry budget of one logical call: ``max_retries`` retries and ``max_total_wait`` seconds in all."""

    client: GraphClient
    started: float
    count: int = 0
    waited: list[float] = field(default_factory=list)

    def allow(self, delay: float) -> bool:
        if self.count >= self.client.max_retries:
            return False
        return (self.client.clock() - self.started) + delay <= self.client.max_total_wait

    def wait(self, delay: float) -> None:
        self.count += 1
        self.waited.append(delay)
        self.client.sleep(delay)

    def summary(self, asked: float | None = None) -> str:
        if not self.count and asked is not None and self.client.max_retries:
            return f'Graph asked to wait {asked:g} s, more than the retry time limit of {self.client.max_total_wait:g} s; try again later.'
        if not self.client.max_retries:
            return 'Not retried (max_retries is 0).'
        return f'Gave up after {self.count} retries in {self.client.clock() - self.started:.1f} s; try again later or raise max_retries.'


T = t.TypeVar('T')


class GraphClient:
    """Microsoft Graph calls of one module run.

    ``parallel`` (and so ``batch``) runs independent calls on up to ``max_parallel`` threads; each thread borrows a
    session of its own (``session.clone()``: a requests Session is not thread-safe), and a session without ``clone``
    runs them one after the other.
    """

    def __init__(self, session: t.Any, graph_endpoint: str, api_version: str, token: str, *, timeout: float,
                 max_retries: int, max_total_wait: float = 120.0, sleep: t.Callable[[float], t.Any] = time.sleep,
                 clock: t.Callable[[], float] = time.monotonic, rng: t.Callable[[], float] = random.random,
                 max_parallel: int = PARALLEL_CALLS) -> None:
        self.session = session
        self.graph_endpoint = graph_endpoint.rstrip('/')
        self.api_version = api_version
        self.base_url = f'{self.graph_endpoint}/{api_version}/'
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_total_wait = max_total_wait
        self.sleep = sleep
        self.clock = clock
        self.rng = rng
        self.max_parallel = max_parallel
        self._token = token
        self._local = threading.local()  # .session: the session a worker thread borrowed
        self._idle_sessions: queue.SimpleQueue[t.Any] = queue.SimpleQueue()
        origin = urlsplit(self.graph_endpoint)
        self._origin = f'{origin.scheme}://{origin.netloc}'.lower()

    # --- plumbing -----------------------------------------------------------------------------------------------

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` (relative to ``/<api_version>/``, or an absolute Graph URL such as a nextLink)."""
        if re.match(r'^[a-z][a-z0-9+.-]*://', path, re.I):
            parts = urlsplit(path)
            if f'{parts.scheme}://{parts.netloc}'.lower() != self._origin:
                # Never send the token anywhere but the configured Graph endpoint.
                raise GraphError(f'Graph returned a link to another host ({parts.scheme}://{parts.netloc}); refusing to send the token there.')
            return path
        return self.base_url + path.lstrip('/')

    def _session(self) -> t.Any:
        """The session of the calling thread: its borrowed one in a worker, else the client's own."""
        return getattr(self._local, 'session', None) or self.session

    def _fresh_connections(self) -> None:
        session = self._session()
        fresh = getattr(session, 'fresh_connections', None)
        if fresh is not None:
            fresh()
        else:
            for adapter in getattr(session, 'adapters', {}).values():
                adapter.close()

    def parallel(self, calls: t.Sequence[t.Callable[[], T]]) -> list[T]:
        """The results of ``calls``, in order, run on up to ``max_parallel`` threads; the first error is raised
        (calls not started yet are cancelled)."""
        workers = min(self.max_parallel, len(calls))
        if workers <= 1 or not hasattr(self.session, 'clone'):
            return [call() for call in calls]

        def run(call: t.Callable[[], T]) -> T:
            try:
                session = self._idle_sessions.get_nowait()
            except queue.Empty:
                session = self.session.clone()  # at most one per worker: each gives its session back when done
            self._local.session = session
            try:
                return call()
            finally:
                self._local.session = None
                self._idle_sessions.put(session)

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix='graph') as pool:
            futures = [pool.submit(run, call) for call in calls]
            try:
                return [future.result() for future in futures]
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    def request(self, method: str, path: str, *, params: t.Any = None, json: t.Any = None,
                headers: t.Mapping[str, str] | None = None) -> t.Any:
        """Send one call (with retries); returns the ``requests.Response``; raises ``GraphError`` for >= 400."""
        method = method.upper()
        url = self.url(path)
        attempts = _Attempts(self, self.clock())
        while True:
            client_request_id = str(uuid.uuid4())
            send_headers = {
                'Authorization': f'Bearer {self._token}',
                'client-request-id': client_request_id,
            }
            send_headers.update(headers or {})
            try:
                response = self._session().request(method, url, params=params, json=json, headers=send_headers, timeout=self.timeout)
            except requests.exceptions.SSLError as exc:
                raise GraphError(f'Graph {method} {_relative_path(url)} failed: {describe_transport_error(exc, url)}',
                                 method=method, path=_relative_path(url), client_request_id=client_request_id) from None
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                delay = backoff_delay(attempts.count, self.rng)
                if attempts.allow(delay):
                    self._fresh_connections()
                    attempts.wait(delay)
                    continue
                raise GraphError(f'Graph {method} {_relative_path(url)} failed: {describe_transport_error(exc, url)} {attempts.summary()}',
                                 method=method, path=_relative_path(url), client_request_id=client_request_id) from None
            if response.status_code in RETRY_STATUSES:
                asked = parse_retry_after(response.headers.get('Retry-After'))
                delay = asked if asked is not None else backoff_delay(attempts.count, self.rng)
                if attempts.allow(delay):
                    response.close()
                    if response.status_code == 503:
                        # Graph best practice: retry a 503 over a new connection.
                        self._fresh_connections()
                    attempts.wait(delay)
                    continue
                raise self._error(method, url, response, client_request_id, attempts.summary(asked))
            if response.status_code >= 400:
                raise self._error(method, url, response, client_request_id)
            return response

    def _error(self, method: str, url: str, response: t.Any, client_request_id: str, gave_up: str = '') -> GraphError:
        try:
            body: t.Any = response.json()
        except ValueError:
            body = response.text
        return graph_error(method, url, response.status_code, body, response.headers, reason=response.reason or '',
                           client_request_id=client_request_id, gave_up=gave_up)

    def _body(self, method: str, url: str, response: t.Any) -> t.Any:
        """Parsed body: JSON, text for text/* answers, ``None`` when empty."""
        if response.status_code == 204 or not response.content:
            return None
        content_type = (response.headers.get('Content-Type') or '').lower()
        if content_type.startswith('text/'):
            return response.text
        try:
            return response.json()
        except ValueError:
            if 'json' in content_type:
                raise GraphError(f'Graph {method} {_relative_path(url)} returned invalid JSON (HTTP {response.status_code}).',
                                 status=response.status_code, method=method, path=_relative_path(url)) from None
            return response.text

    # --- calls ----------------------------------------------------------------------------------------------------

    def get(self, path: str, *, params: t.Any = None, headers: t.Mapping[str, str] | None = None) -> t.Any:
        response = self.request('GET', path, params=params, headers=headers)
        return self._body('GET', response.url or path, response)

    def put(self, path: str, body: t.Mapping[str, t.Any]) -> t.Any:
        """PUT a JSON body; the answer's body (200), or ``None`` (204 or empty)."""
        response = self.request('PUT', path, json=body, headers={'Content-Type': 'application/json'})
        return self._body('PUT', path, response)

    def post(self, path: str, body: t.Any) -> t.Any:
        response = self.request('POST', path, json=body, headers={'Content-Type': 'application/json'})
        return self._body('POST', path, response)

    def get_all(self, path: str, *, params: t.Any = None, headers: t.Mapping[str, str] | None = None) -> list[dict[str, t.Any]]:
        """Every item of a collection, following ``@odata.nextLink`` (the same headers go with every page)."""
        items: list[dict[str, t.Any]] = []
        seen: set[str] = set()
        link: str | None = path
        page_params = params
        while link:
            data = self.get(link, params=page_params, headers=headers)
            if not isinstance(data, dict) or not isinstance(data.get('value'), list):
                raise GraphError(f'Graph GET {_relative_path(link)} did not return a collection (no "value" list).', method='GET',
                                 path=_relative_path(link))
            items.extend(data['value'])
            next_link = data.get('@odata.nextLink')
            if next_link in seen:
                raise GraphError(f'Graph GET {_relative_path(path)} returned the same @odata.nextLink twice; stopping.', method='GET',
                                 path=_relative_path(path))
            if next_link:
                seen.add(next_link)
            link = next_link
            page_params = None  # the nextLink carries the query
        return items

    def batch(self, batch_requests: t.Sequence[BatchRequest]) -> dict[str, BatchResponse]:
        """Send requests through ``$batch`` in chunks of at most 20 (in parallel); returns each item's own answer by id.

        Throttled items (429, 503, 504) are sent again in new batches after the longest ``Retry-After``, within the
        retry budget; every other per-item status (including errors) is returned, not raised. The result is the same
        as sending the chunks one after the other, in the order of ``batch_requests``.
        """
        ids = [item.id for item in batch_requests]
        if len(set(ids)) != len(ids):
            raise ValueError('batch request ids must be unique')
        results: dict[str, BatchResponse] = {}
        pending = list(batch_requests)
        attempts = _Attempts(self, self.clock())
        while pending:
            chunks = [pending[start:start + BATCH_LIMIT] for start in range(0, len(pending), BATCH_LIMIT)]
            answered = self.parallel([functools.partial(self._send_batch, chunk) for chunk in chunks])
            throttled: list[BatchRequest] = []
            waits: list[float] = []
            for chunk, answers in zip(chunks, answered):
                for item, result in zip(chunk, answers):
                    results[item.id] = result
                    if result.status in RETRY_STATUSES:
                        throttled.append(item)
                        asked = parse_retry_after(_header(result.headers, 'Retry-After'))
                        if asked is not None:
                            waits.append(asked)
            if not throttled:
                break
            delay = max(waits) if waits else backoff_delay(attempts.count, self.rng)
            if not attempts.allow(delay):
                break  # the throttled answers are returned as they are
            attempts.wait(delay)
            pending = throttled
        return results

    def _send_batch(self, chunk: list[BatchRequest]) -> list[BatchResponse]:
        """One ``POST $batch`` of at most 20 requests; the answers in the order of ``chunk``."""
        data = self.post('$batch', {'requests': [item.to_json() for item in chunk]})
        answers = data.get('responses') if isinstance(data, dict) else None
        if not isinstance(answers, list):
            raise GraphError('Graph POST $batch returned no "responses" list.', method='POST', path='$batch')
        by_id = {str(answer.get('id')): answer for answer in answers if isinstance(answer, dict)}
        results = []
        for item in chunk:
            answer = by_id.get(item.id)
            if answer is None:
                raise GraphError(f'Graph POST $batch returned no answer for request {item.id} ({item.method} {item.url}).',
                                 method='POST', path='$batch')
            results.append(BatchResponse(id=item.id, status=int(answer.get('status') or 0), headers=dict(answer.get('headers') or {}),
                                         body=answer.get('body'), method=item.method.upper(), url=item.url))
        return results
