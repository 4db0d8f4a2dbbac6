# Copyright (c) entra.autopilot contributors
# Simplified BSD License (see LICENSES/BSD-2-Clause.txt or https://opensource.org/licenses/BSD-2-Clause)
# SPDX-License-Identifier: BSD-2-Clause

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the entra.autopilot collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.

"""Users and groups named by object id, userPrincipalName or display name, resolved to object ids.

Object ids are checked with ``directoryObjects/getByIds`` (1000 per call); names are looked up with ``$batch`` (20 per
request, the requests in parallel). Ids a list already holds need no lookup unless their names are wanted.
Every entry is resolved before anything is reported, so one ``ResolutionError`` lists every problem at once.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from ansible_collections.entra.autopilot.plugins.module_utils._errors import EntraError
from ansible_collections.entra.autopilot.plugins.module_utils._graph_client import BatchRequest, BatchResponse

GET_BY_IDS_PATH = 'directoryObjects/getByIds'
GET_BY_IDS_LIMIT = 1000  # ids per call (Graph documents "up to 1000")

# The note in step 2 of the Windows Autopilot guide, quoted in warnings.
SEED_GROUP_NOTE = 'Any selected groups must be a Microsoft Entra group that contains user objects.'

NOBODY_CAN_JOIN_WARNING = ('The Selected list of "Users may join devices to Microsoft Entra" holds no users and no groups, '
                           'so nobody can join devices to Microsoft Entra.')

_OBJECT_ID = re.compile(r'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$', re.IGNORECASE)
_ODATA_KINDS = {'#microsoft.graph.user': 'user', '#microsoft.graph.group': 'group'}
OTHER_KIND = {'user': 'group', 'group': 'user'}
_USER_SELECT = 'id,userPrincipalName,displayName,mail'
_GROUP_SELECT = 'id,displayName,mail'


def is_object_id(value: str) -> bool:
    """True for a GUID in the 8-4-4-4-12 form Entra object ids have."""
    return bool(_OBJECT_ID.match(value.strip()))


@dataclass(frozen=True)
class Principal:
    """A user or group; ``name`` is the userPrincipalName of a user or the displayName of a group."""

    id: str  # lower case
    type: str  # 'user' | 'group'
    name: str
    mail: str | None = None
    display_name: str | None = None

    @property
    def label(self) -> str:
        """How messages name it: the name and the id."""
        return '%s (%s)' % (self.name, self.id) if self.name != self.id else self.id

    @classmethod
    def from_graph(cls, obj: Mapping[str, Any], kind: str) -> Principal:
        object_id = str(obj.get('id', '')).lower()
        display_name = obj.get('displayName')
        name = obj.get('userPrincipalName') if kind == 'user' else display_name
        return cls(id=object_id, type=kind, name=name or display_name or object_id, mail=obj.get('mail') or None,
                   display_name=display_name)


@dataclass
class Resolved:
    """Entries as given -> principals. ``principals`` holds every object found, by lower-case id (also known ids).

    An id from ``known_ids`` whose object no longer exists maps to a Principal whose name is the id; it is not in
    ``principals`` (so readable views show it as deleted).
    """

    users: dict[str, Principal] = field(default_factory=dict)
    groups: dict[str, Principal] = field(default_factory=dict)
    principals: dict[str, Principal] = field(default_factory=dict)
    missing: list[tuple[str, str]] = field(default_factory=list)  # (kind, entry) not found, with allow_missing

    def add(self, kind: str, entry: str, principal: Principal, *, exists: bool = True) -> None:
        (self.users if kind == 'user' else self.groups)[entry] = principal
        if exists:
            self.principals.setdefault(principal.id, principal)

    @property
    def user_ids(self) -> dict[str, str]:
        return {entry: principal.id for entry, principal in self.users.items()}

    @property
    def group_ids(self) -> dict[str, str]:
        return {entry: principal.id for entry, principal in self.groups.items()}


class ResolutionError(EntraError):
    """Entries that do not name exactly one existing user or group of the right kind; ``entries`` lists them."""

    def __init__(self, problems: list[str], entries: list[str]) -> None:
        count = len(problems)
        super().__init__('Could not resolve %s, so nothing was changed: %s'
                         % ('1 entry' if count == 1 else '%d entries' % count, ' '.join(problems)),
                         problems=problems, entries=entries)
        self.problems = problems
        self.entries = entries


def user_path(upn: str) -> str:
    """The path of ``GET users/{upn}``; ``#`` (guest ``#EXT#`` UPNs) and every other reserved character encoded.

    A UPN starting with ``$`` would read as an OData system segment, so it uses the key form ``users('...')``
    with single quotes doubled.
    """
    if upn.startswith('$'):
        return "users('%s')" % quote(upn.replace("'", "''"), safe="$@'")
    return 'users/' + quote(upn, safe='@')


def group_filter_path(display_name: str) -> str:
    """The path of the exact display-name lookup of groups, single quotes doubled inside the literal."""
    literal = display_name.replace("'", "''")
    return 'groups?$filter=%s&$select=%s' % (quote("displayName eq '%s'" % literal, safe="'"), _GROUP_SELECT)


def parse_count(body: Any) -> int | None:
    """A ``$count`` answer: a JSON number, a numeric string, or (inside ``$batch``) base64 of the text."""
    if isinstance(body, int) and not isinstance(body, bool):
        return body
    if not isinstance(body, str):
        return None
    text = body.strip()
    if text.isdigit():
        return int(text)
    try:
        decoded = base64.b64decode(text, validate=True).decode('ascii').strip()
    except (binascii.Error, ValueError):
        return None
    return int(decoded) if decoded.isdigit() else None


def _rejected(answer: BatchResponse) -> str | None:
    """None for a success; the problem of an entry Graph rejected as a bad request; else the error is raised."""
    error = answer.error()
    if error is None:
        return None
    if answer.status == 400:
        return 'Graph rejected the lookup: %s' % (error.graph_message or error.msg)
    raise error


def _candidates_text(candidates: list[Principal]) -> str:
    return ', '.join('%s%s' % (candidate.id, ' (mail %s)' % candidate.mail if candidate.mail else '') for candidate in candidates)


class PrincipalResolver:
    """Resolution of users and groups through a GraphClient."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def lookup_ids(self, ids: Iterable[str]) -> dict[str, Principal]:
        """The users and groups that exist among ``ids`` (one getByIds call per 1000 ids, in parallel), by lower-case id.

        Ids that are not object ids, and ids of deleted (or other kinds of) objects, are absent.
        """
        wanted = sorted({object_id.strip().lower() for object_id in ids if is_object_id(object_id)})
        pages = [wanted[start:start + GET_BY_IDS_LIMIT] for start in range(0, len(wanted), GET_BY_IDS_LIMIT)]
        found: dict[str, Principal] = {}
        for answer in self.client.parallel([functools.partial(self.client.post, GET_BY_IDS_PATH, {'ids': page, 'types': ['user', 'group']})
                                            for page in pages]):
            items = answer.get('value') if isinstance(answer, dict) else None
            if not isinstance(items, list):
                raise EntraError('Graph POST %s returned no "value" list.' % GET_BY_IDS_PATH)
            for item in items:
                kind = _ODATA_KINDS.get(str(item.get('@odata.type', '')).lower()) if isinstance(item, dict) else None
                if kind is not None and item.get('id'):
                    principal = Principal.from_graph(item, kind)
                    found[principal.id] = principal
        return found

    def resolve(self, users: Iterable[str], groups: Iterable[str], *, known_ids: Iterable[str] = (),
                listed: Mapping[str, Iterable[str]] | None = None, allow_missing: bool = False) -> Resolved:
        """Resolve every entry at once; raise one ResolutionError listing every entry that fails.

        Object ids are checked with getByIds together with ``known_ids`` (ids whose names readable views want).
        ``listed`` maps 'user'/'group' to the ids the policy already holds in lists of that kind: an id entry among
        them need not exist any more (a deleted object stays listed until it is removed), and it is taken as it is,
        without a lookup, unless it is in ``known_ids`` too. A deleted object's id given under the other kind is an
        error (Graph refuses it in the PUT, and it could let nobody join). Names are looked up
        with ``$batch``: users by userPrincipalName (case-insensitive), groups by exact display name (several matches
        are an error listing each candidate). With ``allow_missing`` (removing entries), entries that match nothing
        are listed in ``Resolved.missing`` instead; ambiguous names and ids of the wrong kind are still errors.
        """
        entries = {'user': list(dict.fromkeys(users)), 'group': list(dict.fromkeys(groups))}
        known = {object_id.strip().lower() for object_id in known_ids}
        already = {kind: {object_id.strip().lower() for object_id in ids} for kind, ids in (listed or {}).items()}
        problems: dict[tuple[str, str], str] = {}  # (kind, entry) -> what is wrong
        not_found: set[tuple[str, str]] = set()  # the problems that are "matches nothing"
        result = Resolved()

        id_entries = [(kind, entry) for kind, kind_entries in entries.items() for entry in kind_entries if is_object_id(entry)]
        unchecked = {(kind, entry) for kind, entry in id_entries
                     if entry.strip().lower() in already.get(kind, ()) and entry.strip().lower() not in known}
        lookup = ({entry.strip().lower() for kind, entry in id_entries if (kind, entry) not in unchecked}
                  | {object_id for object_id in known if is_object_id(object_id)})
        result.principals = self.lookup_ids(lookup) if lookup else {}
        for kind, entry in id_entries:
            object_id = entry.strip().lower()
            principal = result.principals.get(object_id)
            other = OTHER_KIND[kind]
            if principal is None and object_id in already.get(kind, ()):
                # already in the policy (and not looked up, or deleted): it stays listed until it is removed
                result.add(kind, entry, Principal(id=object_id, type=kind, name=object_id), exists=False)
            elif principal is None and object_id in already.get(other, ()):
                problems[kind, entry] = ('no %s has this object id: it is the id of a deleted object listed under %ss, where it '
                                         'can stay or be removed, but not be given as a %s.' % (kind, other, kind))
                not_found.add((kind, entry))
            elif principal is None:
                problems[kind, entry] = 'no user or group has this object id (deleted, or from another tenant?).'
                not_found.add((kind, entry))
            elif principal.type != kind:
                problems[kind, entry] = 'this is the %s %s, not a %s; list it under %ss.' % (principal.type, principal.name, kind, principal.type)
            else:
                result.add(kind, entry, principal)

        self._resolve_names(entries, result, problems, not_found)
        if allow_missing:
            for key in [key for key in problems if key in not_found]:
                result.missing.append(key)
                del problems[key]
        if problems:
            # in the order given: users, then groups
            order = {key: index for index, key in enumerate((kind, entry) for kind, kind_entries in entries.items() for entry in kind_entries)}
            keys = sorted(problems, key=order.__getitem__)
            raise ResolutionError(['%ss: %s: %s' % (kind, entry, problems[kind, entry]) for kind, entry in keys],
                                  [entry for _kind, entry in keys])
        return result

    def _resolve_names(self, entries: dict[str, list[str]], result: Resolved, problems: dict[tuple[str, str], str],
                       not_found: set[tuple[str, str]]) -> None:
        lookups: list[BatchRequest] = []
        upn_entries: dict[str, list[str]] = {}  # request id -> entries (UPNs differing only in case share one lookup)
        request_by_upn: dict[str, str] = {}
        for entry in entries['user']:
            if is_object_id(entry):
                continue
            upn = entry.strip()
            request_id = request_by_upn.get(upn.lower())
            if request_id is None:
                request_id = request_by_upn[upn.lower()] = 'user%d' % len(request_by_upn)
                lookups.append(BatchRequest(id=request_id, method='GET', url='%s?$select=%s' % (user_path(upn), _USER_SELECT)))
            upn_entries.setdefault(request_id, []).append(entry)
        group_entries: dict[str, str] = {}
        for entry in entries['group']:
            if is_object_id(entry):
                continue
            request_id = 'group%d' % len(group_entries)
            group_entries[request_id] = entry
            lookups.append(BatchRequest(id=request_id, method='GET', url=group_filter_path(entry.strip())))
        if not lookups:
            return
        answers = self.client.batch(lookups)

        for request_id, user_entries in upn_entries.items():
            answer = answers[request_id]
            body = answer.body if isinstance(answer.body, dict) else {}
            if answer.status == 404:
                problem = 'no user has this userPrincipalName (give the UPN, not a mail address, or the object id).'
            elif answer.status < 400 and not body.get('id'):
                problem = 'Graph answered the lookup without an object id.'
            else:
                problem = _rejected(answer)
            for entry in user_entries:
                if problem:
                    problems['user', entry] = problem
                    if answer.status == 404:
                        not_found.add(('user', entry))
                else:
                    result.add('user', entry, Principal.from_graph(body, 'user'))

        for request_id, entry in group_entries.items():
            answer = answers[request_id]
            problem = _rejected(answer)
            if problem:
                problems['group', entry] = problem
                continue
            body = answer.body if isinstance(answer.body, dict) else {}
            found = [Principal.from_graph(item, 'group') for item in body.get('value') or [] if isinstance(item, dict) and item.get('id')]
            # Graph compares display names regardless of case; an exactly matching name wins over the others
            matches = [group for group in found if group.name == entry.strip()] or found
            if not matches:
                problems['group', entry] = 'no group has this display name (it must match exactly; or give the object id).'
                not_found.add(('group', entry))
            elif len(matches) > 1 or body.get('@odata.nextLink'):
                problems['group', entry] = ('%d%s groups have this display name: %s. Give the one you mean by its object id.'
                                            % (len(matches), ' or more' if body.get('@odata.nextLink') else '', _candidates_text(matches)))
            else:
                result.add('group', entry, matches[0])

    def group_user_counts(self, group_ids: Iterable[str]) -> dict[str, int]:
        """The number of user members of each group (one ``$batch``), by lower-case id.

        Groups whose count could not be read (deleted, no permission) are absent; see ``group_warnings``.
        """
        ids = sorted({group_id.strip().lower() for group_id in group_ids})
        if not ids:
            return {}
        count_requests = [BatchRequest(id='count%d' % index, method='GET', headers={'ConsistencyLevel': 'eventual'},
                                       url='groups/%s/members/microsoft.graph.user/$count' % quote(group_id))
                          for index, group_id in enumerate(ids)]
        answers = self.client.batch(count_requests)
        counts: dict[str, int] = {}
        for group_id, request in zip(ids, count_requests):
            answer = answers.get(request.id)
            if answer is not None and answer.status == 200:
                count = parse_count(answer.body)
                if count is not None:
                    counts[group_id] = count
        return counts


def group_warnings(groups: Iterable[Principal], counts: Mapping[str, int]) -> list[str]:
    """Warnings for groups (being added to a Selected list) without user members, or whose members were not counted."""
    warnings = []
    for group in groups:
        count = counts.get(group.id)
        if count == 0:
            warnings.append('The group %s contains no user objects, so it lets nobody join devices. %s'
                            % (group.label, SEED_GROUP_NOTE))
        elif count is None:
            warnings.append('Could not count the user members of the group %s (the app may lack the permission to read '
                            'group members, such as GroupMember.Read.All). %s' % (group.label, SEED_GROUP_NOTE))
    return warnings


def nobody_can_join_warning(membership: Any) -> str | None:
    """The warning for a Selected membership without users and groups, else None."""
    if membership is not None and membership.scope == 'selected' and not membership.users and not membership.groups:
        return NOBODY_CAN_JOIN_WARNING
    return None
