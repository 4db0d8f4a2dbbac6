# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The small part of OData URL syntax the emulator understands: $filter, $select, $top, $skiptoken, key segments."""

from __future__ import annotations

import base64
import json
import re
from typing import Any, Callable

from .errors import GraphFault

Predicate = Callable[[dict], bool]


class FilterSyntaxError(ValueError):
    pass


_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<punct>[(),])|(?P<word>[A-Za-z_][A-Za-z0-9_./]*))")


def _tokenize(text: str) -> list[tuple[str, Any, int]]:
    tokens: list[tuple[str, Any, int]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise FilterSyntaxError("syntax error at position %d in '%s'" % (pos, text))
        if match.group('str') is not None:
            tokens.append(('str', match.group('str')[1:-1].replace("''", "'"), match.start('str')))
        elif match.group('num') is not None:
            tokens.append(('num', float(match.group('num')) if '.' in match.group('num') else int(match.group('num')), match.start('num')))
        elif match.group('punct') is not None:
            tokens.append((match.group('punct'), match.group('punct'), match.start('punct')))
        else:
            word = match.group('word')
            lowered = word.lower()
            if lowered in ('true', 'false'):
                tokens.append(('bool', lowered == 'true', match.start('word')))
            elif lowered == 'null':
                tokens.append(('null', None, match.start('word')))
            elif lowered in ('eq', 'ne', 'and', 'or', 'not', 'in'):
                tokens.append((lowered, lowered, match.start('word')))
            else:
                tokens.append(('name', word, match.start('word')))
        pos = match.end()
    return tokens


def _equal(left: Any, right: Any) -> bool:
    # Directory string comparisons are case-insensitive.
    if isinstance(left, str) and isinstance(right, str):
        return left.casefold() == right.casefold()
    return left == right


class _FilterParser:
    def __init__(self, text: str, properties: frozenset[str], type_name: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0
        self.properties = {name.lower(): name for name in properties}
        self.type_name = type_name

    def _peek(self) -> str | None:
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else None

    def _take(self, kind: str | None = None) -> tuple[str, Any, int]:
        if self.pos >= len(self.tokens):
            raise FilterSyntaxError("unexpected end of '%s'" % self.text)
        token = self.tokens[self.pos]
        if kind is not None and token[0] != kind:
            raise FilterSyntaxError("syntax error at position %d in '%s'" % (token[2], self.text))
        self.pos += 1
        return token

    def parse(self) -> Predicate:
        predicate = self._or()
        if self.pos != len(self.tokens):
            raise FilterSyntaxError("syntax error at position %d in '%s'" % (self.tokens[self.pos][2], self.text))
        return predicate

    def _or(self) -> Predicate:
        parts = [self._and()]
        while self._peek() == 'or':
            self._take()
            parts.append(self._and())
        if len(parts) == 1:
            return parts[0]
        return lambda obj: any(part(obj) for part in parts)

    def _and(self) -> Predicate:
        parts = [self._atom()]
        while self._peek() == 'and':
            self._take()
            parts.append(self._atom())
        if len(parts) == 1:
            return parts[0]
        return lambda obj: all(part(obj) for part in parts)

    def _property(self, name: str) -> str:
        real = self.properties.get(name.lower())
        if real is None:
            raise GraphFault(400, 'BadRequest', "Could not find a property named '%s' on type 'microsoft.graph.%s'." % (name, self.type_name))
        return real

    def _literal(self) -> Any:
        kind, value, _pos = self._take()
        if kind not in ('str', 'num', 'bool', 'null'):
            raise FilterSyntaxError("expected a literal in '%s'" % self.text)
        return value

    def _atom(self) -> Predicate:
        kind = self._peek()
        if kind == '(':
            self._take()
            inner = self._or()
            self._take(')')
            return inner
        if kind == 'not':
            self._take()
            inner_not = self._atom()
            return lambda obj: not inner_not(obj)
        _kind, name, _pos = self._take('name')
        if self._peek() == '(':
            return self._function(name)
        prop = self._property(name)
        operator = self._take()[0]
        if operator == 'in':
            self._take('(')
            values = [self._literal()]
            while self._peek() == ',':
                self._take()
                values.append(self._literal())
            self._take(')')
            return lambda obj: any(_equal(obj.get(prop), value) for value in values)
        if operator not in ('eq', 'ne'):
            raise GraphFault(400, 'Request_UnsupportedQuery', 'Unsupported Query.')
        value = self._literal()
        if operator == 'eq':
            return lambda obj: _equal(obj.get(prop), value)
        return lambda obj: not _equal(obj.get(prop), value)

    def _function(self, name: str) -> Predicate:
        if name.lower() != 'startswith':
            raise GraphFault(400, 'Request_UnsupportedQuery', 'Unsupported Query.')
        self._take('(')
        prop = self._property(self._take('name')[1])
        self._take(',')
        prefix = self._literal()
        self._take(')')
        if not isinstance(prefix, str):
            raise FilterSyntaxError("startswith needs a string in '%s'" % self.text)
        return lambda obj: isinstance(obj.get(prop), str) and obj[prop].casefold().startswith(prefix.casefold())


def parse_filter(text: str, properties: frozenset[str], type_name: str) -> Predicate:
    """Compile a $filter expression (eq, ne, in, startswith, and, or, not) into a predicate.

    Raises GraphFault with the status Graph uses for a syntax error, an unknown property or an unsupported operator.
    """
    try:
        return _FilterParser(text, properties, type_name).parse()
    except FilterSyntaxError as error:
        raise GraphFault(400, 'BadRequest', 'Invalid filter clause: %s' % error)


def parse_select(text: str | None, properties: frozenset[str], type_name: str) -> list[str] | None:
    """The property names of a $select (None when absent); unknown names are a 400 like Graph's."""
    if text is None:
        return None
    lookup = {name.lower(): name for name in properties}
    selected: list[str] = []
    for item in text.split(','):
        item = item.strip()
        if not item:
            continue
        if item == '*':
            return None
        real = lookup.get(item.lower())
        if real is None:
            raise GraphFault(400, 'BadRequest', "Could not find a property named '%s' on type 'microsoft.graph.%s'." % (item, type_name))
        if real not in selected:
            selected.append(real)
    return selected


def project(obj: dict, selected: list[str] | None, default: tuple[str, ...], odata_type: str | None = None) -> dict:
    """The object as Graph returns it: the selected properties, or the default ones; missing ones are null."""
    names = selected if selected is not None else list(default)
    result: dict = {}
    if odata_type:
        result['@odata.type'] = odata_type
    for name in names:
        value = obj.get(name)
        result[name] = list(value) if isinstance(value, list) else value
    return result


def parse_top(text: str | None, default: int = 100, maximum: int = 999) -> int:
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 1 or value > maximum:
        raise GraphFault(400, 'BadRequest', "Invalid page size specified: '%s'. Must be between 1 and %d inclusive." % (text, maximum))
    return value


def make_skiptoken(offset: int) -> str:
    raw = json.dumps({'emulator-offset': offset}).encode('utf-8')
    return 'RFNwdA' + base64.urlsafe_b64encode(raw).decode('ascii').rstrip('=')


def parse_skiptoken(text: str | None) -> int:
    if text is None:
        return 0
    try:
        if not text.startswith('RFNwdA'):
            raise ValueError(text)
        raw = text[len('RFNwdA'):]
        data = json.loads(base64.urlsafe_b64decode(raw + '=' * (-len(raw) % 4)))
        offset = int(data['emulator-offset'])
        if offset < 0:
            raise ValueError(text)
        return offset
    except (ValueError, KeyError, TypeError):
        raise GraphFault(400, 'Request_BadRequest', "Invalid paging token '%s'." % text)


_KEY_SEGMENT = re.compile(r"^(?P<name>[A-Za-z]+)\('(?P<key>(?:[^']|'')*)'\)$")


def split_key_segment(segment: str) -> tuple[str, str | None]:
    """``users('$x@y.com')`` -> ('users', '$x@y.com'); ``users`` -> ('users', None). Doubled quotes are undone."""
    match = _KEY_SEGMENT.match(segment)
    if not match:
        if '(' in segment:
            raise GraphFault(400, 'BadRequest', "Bad Request - Error in query syntax: the key segment '%s' is not valid." % segment)
        return segment, None
    return match.group('name'), match.group('key').replace("''", "'")
