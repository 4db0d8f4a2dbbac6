# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The request log tests and benchmarks read, and the faults tests inject."""

from __future__ import annotations

import bisect
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any


class RequestLog:
    """Every request the emulator answered, in order; `seq` keeps growing across clears so `since` stays valid."""

    def __init__(self, path: str | None = None) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict] = []
        self._seq = 0
        # kept open (and flushed per entry): opening the file for every $batch item would cost more than the item
        self._file = open(path, 'a', encoding='utf-8') if path else None  # pylint: disable=consider-using-with

    def append(self, entry: dict) -> dict:
        with self._lock:
            self._seq += 1
            entry = dict(entry, seq=self._seq)
            self._entries.append(entry)
            if self._file:
                self._file.write(json.dumps(entry, sort_keys=True) + '\n')
                self._file.flush()
            return entry

    def entries(self, tenant: str | None = None, since: int = 0) -> list[dict]:
        with self._lock:
            # entries are in seq order: skip the old ones without looking at them (benchmarks make long logs)
            start = bisect.bisect_right(self._entries, since, key=lambda entry: entry['seq'])
            return [dict(entry) for entry in self._entries[start:]
                    if tenant is None or (entry.get('tenant') or '').lower() == tenant.lower()]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    @property
    def last_seq(self) -> int:
        with self._lock:
            return self._seq

    def close(self) -> None:
        """Close the log file; entries appended afterwards stay in memory only."""
        with self._lock:
            if self._file:
                self._file.close()
                self._file = None


@dataclass
class Fault:
    """One injected fault. Unset fields match anything; `count` -1 means forever."""

    id: int
    path: str = ''
    method: str | None = None
    tenant: str | None = None
    kind: str | None = None
    status: int | None = None
    count: int = 1
    retry_after: Any = None
    latency: float = 0.0
    drop: bool = False
    body: Any = None
    hits: int = 0
    pattern: Any = field(default=None, repr=False)

    def matches(self, kind: str, tenant: str | None, method: str, paths: tuple[str, ...]) -> bool:
        if self.kind and self.kind != kind:
            return False
        if self.method and self.method.upper() != method.upper():
            return False
        if self.tenant and (tenant or '').lower() != self.tenant.lower():
            return False
        return any(self.pattern.search(path) for path in paths)

    def describe(self) -> dict:
        return {'id': self.id, 'path': self.path, 'method': self.method, 'tenant': self.tenant, 'kind': self.kind, 'status': self.status,
                'count': self.count, 'retry_after': self.retry_after, 'latency': self.latency, 'drop': self.drop, 'body': self.body,
                'hits': self.hits}


class FaultRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._next_id = 0

    def add(self, spec: dict) -> Fault:
        """Add a fault from the control API body; ValueError names a bad field."""
        known = {'path', 'method', 'tenant', 'kind', 'status', 'count', 'retry_after', 'latency', 'drop', 'body'}
        unknown = set(spec) - known
        if unknown:
            raise ValueError('unknown fault fields: %s (known: %s)' % (', '.join(sorted(unknown)), ', '.join(sorted(known))))
        path = spec.get('path') or ''
        try:
            pattern = re.compile(path)
        except re.error as error:
            raise ValueError('path is not a valid regular expression: %s' % error)
        status = spec.get('status')
        if status is not None and (not isinstance(status, int) or not 100 <= status <= 599):
            raise ValueError('status must be an HTTP status code')
        count = spec.get('count', 1)
        if not isinstance(count, int) or count == 0 or count < -1:
            raise ValueError('count must be a positive integer or -1 (forever)')
        latency = spec.get('latency') or 0
        if not isinstance(latency, (int, float)) or latency < 0:
            raise ValueError('latency must be a number of seconds')
        if status is None and not latency and not spec.get('drop'):
            raise ValueError('a fault needs at least one of status, latency or drop')
        with self._lock:
            self._next_id += 1
            fault = Fault(id=self._next_id, path=path, method=spec.get('method'), tenant=spec.get('tenant'), kind=spec.get('kind'),
                          status=status, count=count, retry_after=spec.get('retry_after'), latency=float(latency),
                          drop=bool(spec.get('drop')), body=spec.get('body'), pattern=pattern)
            self._faults.append(fault)
            return fault

    def take(self, kind: str, tenant: str | None, method: str, paths: tuple[str, ...]) -> Fault | None:
        """The first matching fault, with one use consumed (atomically, so concurrent requests share `count`)."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(kind, tenant, method, paths):
                    fault.hits += 1
                    if fault.count > 0:
                        fault.count -= 1
                        if fault.count == 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def describe(self) -> list[dict]:
        with self._lock:
            return [fault.describe() for fault in self._faults]
