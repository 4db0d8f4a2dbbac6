# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Microsoft Graph under /v1.0 and /beta: the policy singleton, users, groups, members, getByIds, checkMemberGroups and $batch."""

from __future__ import annotations

import hashlib
import json
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import odata
from .directory import (DEVICE_DEFAULT, DEVICE_PROPERTIES, GROUP_DEFAULT, GROUP_PROPERTIES, ODATA_TYPES, USER_DEFAULT, USER_PROPERTIES,
                        is_guid)
from .errors import GraphFault, graph_error_body
from .messages import Headers, Request, Response
from .policy import apply_put
from .tokens import InvalidToken

if TYPE_CHECKING:
    from .server import Emulator
    from .tenants import Tenant

JSON_TYPE = 'application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8'
VERSIONS = ('v1.0', 'beta')
MAX_BATCH = 20
MAX_IDS = 1000
MAX_CHECK_GROUPS = 20  # groupIds per checkMemberGroups call (Graph documents "up to 20")

# Application permissions that allow each kind of call (any one of them).
PERMISSIONS = {
    'policy.read': ('Policy.Read.DeviceConfiguration', 'Policy.ReadWrite.DeviceConfiguration', 'Policy.Read.All'),
    'policy.write': ('Policy.ReadWrite.DeviceConfiguration',),
    'users': ('User.Read.All', 'User.ReadBasic.All', 'Directory.Read.All', 'User.ReadWrite.All', 'Directory.ReadWrite.All'),
    'groups': ('Group.Read.All', 'GroupMember.Read.All', 'Directory.Read.All', 'Group.ReadWrite.All', 'Directory.ReadWrite.All'),
    'getByIds': ('Directory.Read.All', 'Directory.ReadWrite.All'),
    'members': ('GroupMember.Read.All', 'Group.Read.All', 'Directory.Read.All', 'Group.ReadWrite.All', 'Directory.ReadWrite.All'),
    'organization': ('Organization.Read.All', 'Directory.Read.All', 'Directory.ReadWrite.All', 'User.Read.All'),
}
QUERY_OPTIONS = ('$select', '$filter', '$top', '$skiptoken', '$count', '$orderby', '$search', '$expand', '$skip', '$format')
DEFAULT_ERRORS = {
    400: ('BadRequest', 'Bad request.'),
    401: ('InvalidAuthenticationToken', 'Access token validation failure.'),
    403: ('Authorization_RequestDenied', 'Insufficient privileges to complete the operation.'),
    404: ('Request_ResourceNotFound', 'Resource not found.'),
    409: ('Directory_ConcurrencyViolation', 'Error due to concurrent requests being made to the tenant. Please wait briefly and retry.'),
    429: ('TooManyRequests', 'Please retry again later.'),
    500: ('InternalServerError', 'Internal server error.'),
    502: ('BadGateway', 'Bad gateway.'),
    503: ('ServiceUnavailable', 'The service is temporarily unavailable. Please retry later.'),
    504: ('GatewayTimeout', 'The server did not receive a timely response from the upstream server.'),
}


def _is_action(segment: str, name: str) -> bool:
    """A bound action segment, with or without its namespace (``checkMemberGroups``, ``microsoft.graph.checkMemberGroups``)."""
    return segment in (name, 'microsoft.graph.' + name)


# the same on every answer (encoded once: $batch answers carry it for every item)
AGS_DIAGNOSTIC = json.dumps({'ServerInfo': {'DataCenter': 'Emulator', 'Slice': 'E', 'Ring': '0', 'ScaleUnit': '000', 'RoleInstance': 'EMU'}})


@dataclass
class Call:
    """One authenticated Graph request (a top-level request or a $batch item)."""

    request: Request
    tenant: Tenant
    claims: dict
    version: str
    base: str           # scheme://host:port the client used


def graph_headers(request_id: str, client_request_id: str) -> dict[str, str]:
    client_request_id = client_request_id or request_id
    return {
        'request-id': request_id,
        'client-request-id': client_request_id,
        'x-ms-ags-diagnostic': AGS_DIAGNOSTIC,
        'x-ms-resource-unit': '1',
        'Strict-Transport-Security': 'max-age=31536000',
        'Cache-Control': 'no-cache',
        'OData-Version': '4.0',
    }


def error_response(fault: GraphFault, request_id: str, client_request_id: str) -> Response:
    headers = graph_headers(request_id, client_request_id)
    headers.update(fault.headers)
    body = graph_error_body(fault.code, fault.message, request_id, client_request_id or request_id)
    return Response.json_response(fault.status, body, JSON_TYPE, headers)


def fault_response(status: int, body: Any, retry_after: Any, request_id: str, client_request_id: str) -> Response:
    """The answer to an injected fault: the given body, else Graph's usual error for that status."""
    headers = graph_headers(request_id, client_request_id)
    if retry_after is not None:
        headers['Retry-After'] = str(retry_after)
    if body is None:
        code, message = DEFAULT_ERRORS.get(status, ('UnknownError', 'An unknown error occurred.'))
        body = graph_error_body(code, message, request_id, client_request_id or request_id)
        if status == 429:
            body['error']['innerError'].update({'code': '429', 'message': 'Please retry after', 'status': '429'})
    if isinstance(body, str):
        response = Response.text(status, body)
        response.headers = Headers(dict(headers, **{'Content-Type': 'text/plain; charset=utf-8'}))
        return response
    return Response.json_response(status, body, JSON_TYPE, headers)


class GraphService:
    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    # -- authentication -----------------------------------------------------------------------------------------

    def authenticate(self, request: Request) -> tuple[Tenant, dict]:
        header = request.headers.get('Authorization') or ''
        scheme, _sep, token = header.partition(' ')
        token = token.strip()
        if not header or scheme.lower() != 'bearer' or not token:
            raise self._unauthorized('Access token is empty.')
        try:
            claims = self.emulator.tokens.validate(token, self.emulator.graph_audiences(with_slash=True))
        except InvalidToken as error:
            raise self._unauthorized(str(error))
        tenant = self.emulator.tenants.get(claims.get('tid'))
        if tenant is None:
            raise self._unauthorized('Access token validation failure. The token was issued for an unknown tenant.')
        return tenant, claims

    @staticmethod
    def _unauthorized(message: str) -> GraphFault:
        return GraphFault(401, 'InvalidAuthenticationToken', message, {
            'WWW-Authenticate': 'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
                                'client_id="00000003-0000-0000-c000-000000000000"'})

    @staticmethod
    def _require(call: Call, permission: str) -> None:
        roles = call.claims.get('roles') or []
        if not any(role in roles for role in PERMISSIONS[permission]):
            raise GraphFault(403, 'Authorization_RequestDenied', 'Insufficient privileges to complete the operation.')

    # -- routing ------------------------------------------------------------------------------------------------

    def handle(self, call: Call, relative: str) -> Response:
        """Answer one Graph request whose path relative to /<version>/ is `relative` (percent-encoded)."""
        request = call.request
        try:
            response = self._route(call, relative)
        except GraphFault as fault:
            return error_response(fault, request.request_id, request.client_request_id)
        response.headers = Headers(dict(graph_headers(request.request_id, request.client_request_id), **response.headers.as_dict()))
        return response

    def _route(self, call: Call, relative: str) -> Response:
        query = self._query_options(call.request)
        segments = [urllib.parse.unquote(segment) for segment in relative.strip('/').split('/')] if relative.strip('/') else []
        method = call.request.method
        if not segments:
            raise GraphFault(400, 'BadRequest', 'Invalid request: no resource segment.')
        head, key = odata.split_key_segment(segments[0])
        rest = segments[1:]
        if key is not None:
            rest = [key] + rest
        if head == 'policies':
            if rest == ['deviceRegistrationPolicy']:
                return self._policy(call, method)
            raise self._no_segment(rest[0] if rest else head)
        if head == 'users':
            if len(rest) == 2 and _is_action(rest[1], 'checkMemberGroups'):
                return self._check_member_groups(call, 'user', rest[0], key_syntax=key is not None)
            self._allow(method, 'GET')
            if not rest:
                return self._list_users(call, query)
            if len(rest) == 1:
                return self._get_user(call, rest[0], query, key_syntax=key is not None)
            raise self._no_segment(rest[1])
        if head == 'groups':
            return self._groups(call, method, rest, query)
        if head == 'directoryObjects':
            if len(rest) == 2 and _is_action(rest[1], 'checkMemberGroups'):
                return self._check_member_groups(call, 'directoryObject', rest[0])
            if rest in (['getByIds'], ['microsoft.graph.getByIds']):
                self._allow(method, 'POST')
                return self._get_by_ids(call)
            if len(rest) == 1 and is_guid(rest[0]):
                self._allow(method, 'GET')
                self._require(call, 'getByIds')
                return self._get_directory_object(call, rest[0], query)
            raise self._no_segment(rest[0] if rest else head)
        if head == 'organization' and not rest:
            self._allow(method, 'GET')
            self._require(call, 'organization')
            return self._organization(call)
        if head == '$batch' and not rest:
            raise GraphFault(400, 'BadRequest', 'Nested $batch requests are not supported.')
        raise self._no_segment(head)

    @staticmethod
    def _no_segment(segment: str) -> GraphFault:
        return GraphFault(400, 'BadRequest', "Resource not found for the segment '%s'." % segment)

    @staticmethod
    def _allow(method: str, *allowed: str) -> None:
        if method not in allowed:
            raise GraphFault(405, 'Request_BadRequest', 'Specified HTTP method is not allowed for the request target.')

    @staticmethod
    def _query_options(request: Request) -> dict[str, str]:
        options: dict[str, str] = {}
        for name, value in request.query.items():
            normal = name if name.startswith('$') else '$' + name
            if normal.lower() in QUERY_OPTIONS:
                options[normal.lower()] = value
            elif name.startswith('$'):
                raise GraphFault(400, 'BadRequest', "Query option '%s' is not allowed. To allow it, set the 'AllowedQueryOptions' property on "
                                                    "EnableQueryAttribute or QueryValidationSettings." % name)
        for unsupported in ('$orderby', '$search', '$expand', '$skip', '$format'):
            if unsupported in options:
                raise GraphFault(400, 'Request_UnsupportedQuery', "The emulator does not support the query option '%s'." % unsupported)
        return options

    @staticmethod
    def _eventual(call: Call) -> bool:
        return (call.request.headers.get('ConsistencyLevel') or '').lower() == 'eventual'

    def _context(self, call: Call, fragment: str) -> str:
        return '%s/%s/$metadata#%s' % (call.base, call.version, fragment)

    # -- policy -------------------------------------------------------------------------------------------------

    def _policy(self, call: Call, method: str) -> Response:
        self._allow(method, 'GET', 'PUT')
        if method == 'GET':
            self._require(call, 'policy.read')
            body: dict = {'@odata.context': self._context(call, 'policies/deviceRegistrationPolicy/$entity')}
            body.update(call.tenant.read_policy())
            return Response.json_response(200, body, JSON_TYPE)
        self._require(call, 'policy.write')
        payload = self._json_body(call.request)
        stored = call.tenant.update_policy(lambda current, directory, intune: apply_put(current, payload, directory, intune))
        return Response.json_response(200, stored, JSON_TYPE)

    @staticmethod
    def _json_body(request: Request) -> Any:
        content_type = (request.headers.get('Content-Type') or '').lower()
        if not request.body:
            raise GraphFault(400, 'BadRequest', 'Empty Payload. JSON content expected.')
        if 'json' not in content_type:
            raise GraphFault(400, 'BadRequest', 'Unable to read JSON request payload. Please ensure Content-Type header is set and payload '
                                                'is of valid JSON format.')
        try:
            return request.json()
        except ValueError:
            raise GraphFault(400, 'BadRequest', 'Unable to read JSON request payload. Please ensure Content-Type header is set and payload '
                                                'is of valid JSON format.')

    # -- users --------------------------------------------------------------------------------------------------

    def _get_user(self, call: Call, key: str, query: dict[str, str], key_syntax: bool) -> Response:
        self._require(call, 'users')
        self._only(query, '$select')
        if key.startswith('$') and not key_syntax:
            raise GraphFault(400, 'BadRequest', "Bad Request - Error in query syntax: '%s' is not a valid segment; a key that starts with "
                                                "'$' must use the users('...') syntax." % key)
        directory = call.tenant.directory
        user = directory.users.get(key.lower()) if is_guid(key) else directory.user_by_upn(key)
        if user is None:
            raise self._not_found(key)
        selected = odata.parse_select(query.get('$select'), USER_PROPERTIES, 'user')
        body = {'@odata.context': self._context(call, 'users/$entity' if selected is None else 'users(%s)/$entity' % ','.join(selected))}
        body.update(odata.project(user, selected, USER_DEFAULT))
        return Response.json_response(200, body, JSON_TYPE)

    @staticmethod
    def _not_found(key: str) -> GraphFault:
        return GraphFault(404, 'Request_ResourceNotFound',
                          "Resource '%s' does not exist or one of its queried reference-property objects are not present." % key)

    @staticmethod
    def _only(query: dict[str, str], *allowed: str) -> None:
        for name in query:
            if name not in allowed:
                raise GraphFault(400, 'BadRequest', "Query option '%s' is not allowed on a single object." % name)

    def _list_users(self, call: Call, query: dict[str, str]) -> Response:
        self._require(call, 'users')
        users = list(call.tenant.directory.users.values())
        return self._page(call, 'users', users, query, USER_PROPERTIES, USER_DEFAULT, 'user', None)

    def _page(self, call: Call, entity_set: str, items: list[dict], query: dict[str, str], properties: frozenset[str],
              default: tuple[str, ...], type_name: str, odata_types: list[str | None] | None,
              defaults_by_type: dict[str, tuple[str, ...]] | None = None) -> Response:
        """A list response with $filter, $select, $top, $count and @odata.nextLink paging."""
        types: list[str | None] = odata_types if odata_types is not None else [None] * len(items)
        if '$filter' in query:
            predicate = odata.parse_filter(query['$filter'], properties, type_name)
            kept = [(item, kind) for item, kind in zip(items, types) if predicate(item)]
            items, types = [item for item, _kind in kept], [kind for _item, kind in kept]
        selected = odata.parse_select(query.get('$select'), properties, type_name)
        top = odata.parse_top(query.get('$top'))
        offset = odata.parse_skiptoken(query.get('$skiptoken'))
        count_requested = (query.get('$count') or '').lower() == 'true'
        if count_requested and not self._eventual(call):
            raise GraphFault(400, 'Request_UnsupportedQuery', "Unsupported query: $count requires the header 'ConsistencyLevel: eventual'.")
        fragment = entity_set if selected is None else '%s(%s)' % (entity_set, ','.join(selected))
        body: dict = {'@odata.context': self._context(call, fragment)}
        if count_requested and offset == 0:
            body['@odata.count'] = len(items)
        value = []
        for item, kind in list(zip(items, types))[offset:offset + top]:
            item_default = (defaults_by_type or {}).get(kind or '', default)
            value.append(odata.project(item, selected, item_default, kind))
        if offset + top < len(items):
            params = {name: value for name, value in call.request.query.items() if name.lstrip('$').lower() != 'skiptoken'}
            params['$skiptoken'] = odata.make_skiptoken(offset + top)
            query = urllib.parse.urlencode(params, quote_via=urllib.parse.quote, safe='$,')
            body['@odata.nextLink'] = '%s/%s/%s?%s' % (call.base, call.version, self._relative_path(call), query)
        body['value'] = value
        return Response.json_response(200, body, JSON_TYPE)

    @staticmethod
    def _relative_path(call: Call) -> str:
        path = call.request.path
        for version in VERSIONS:
            prefix = '/%s/' % version
            if path.startswith(prefix):
                return path[len(prefix):]
        return path.lstrip('/')

    # -- groups -------------------------------------------------------------------------------------------------

    def _groups(self, call: Call, method: str, rest: list[str], query: dict[str, str]) -> Response:
        if len(rest) == 2 and _is_action(rest[1], 'checkMemberGroups'):
            return self._check_member_groups(call, 'group', rest[0])
        self._allow(method, 'GET')
        directory = call.tenant.directory
        if not rest:
            self._require(call, 'groups')
            return self._page(call, 'groups', list(directory.groups.values()), query, GROUP_PROPERTIES, GROUP_DEFAULT, 'group', None)
        group_id = rest[0]
        if len(rest) == 1:
            self._require(call, 'groups')
        else:
            self._require(call, 'members')
        if not is_guid(group_id):
            raise GraphFault(400, 'Request_BadRequest', "Invalid object identifier '%s'." % group_id)
        group = directory.groups.get(group_id.lower())
        if group is None:
            raise self._not_found(group_id)
        if len(rest) == 1:
            self._only(query, '$select')
            selected = odata.parse_select(query.get('$select'), GROUP_PROPERTIES, 'group')
            body = {'@odata.context': self._context(call, 'groups/$entity' if selected is None else 'groups(%s)/$entity' % ','.join(selected))}
            body.update(odata.project(group, selected, GROUP_DEFAULT))
            return Response.json_response(200, body, JSON_TYPE)
        if rest[1] != 'members':
            raise self._no_segment(rest[1])
        tail = rest[2:]
        cast = None
        if tail and tail[0].startswith('microsoft.graph.'):
            cast = tail[0][len('microsoft.graph.'):]
            if cast not in ODATA_TYPES:
                raise GraphFault(400, 'Request_UnsupportedQuery', "Unsupported query: the member type '%s' cannot be used in a cast." % tail[0])
            tail = tail[1:]
        members = [(kind, obj) for kind, obj in directory.group_members(group_id) if cast is None or kind == cast]
        if tail == ['$count']:
            self._only(query, '$filter')
            if not self._eventual(call):
                raise GraphFault(400, 'Request_UnsupportedQuery',
                                 "Unsupported query: $count on members requires the header 'ConsistencyLevel: eventual'.")
            return Response.text(200, str(len(members)))
        if tail:
            raise self._no_segment(tail[0])
        properties = frozenset(USER_PROPERTIES | GROUP_PROPERTIES | DEVICE_PROPERTIES) if cast is None else \
            {'user': USER_PROPERTIES, 'group': GROUP_PROPERTIES, 'device': DEVICE_PROPERTIES}[cast]
        defaults = {ODATA_TYPES['user']: USER_DEFAULT, ODATA_TYPES['group']: GROUP_DEFAULT, ODATA_TYPES['device']: DEVICE_DEFAULT}
        entity_set = 'directoryObjects' if cast is None else cast + 's'
        return self._page(call, entity_set, [obj for _kind, obj in members], query, properties, USER_DEFAULT,
                          cast or 'directoryObject', [ODATA_TYPES[kind] for kind, _obj in members], defaults)

    # -- directory objects --------------------------------------------------------------------------------------

    def _get_by_ids(self, call: Call) -> Response:
        self._require(call, 'getByIds')
        payload = self._json_body(call.request)
        if not isinstance(payload, dict) or not isinstance(payload.get('ids'), list):
            raise GraphFault(400, 'Request_BadRequest', "The request body must contain the parameter 'ids' (a collection of object ids).")
        ids = payload['ids']
        if len(ids) > MAX_IDS:
            raise GraphFault(400, 'Request_BadRequest', "Number of included identifiers cannot exceed '%d'." % MAX_IDS)
        for object_id in ids:
            if not is_guid(object_id):
                raise GraphFault(400, 'Request_BadRequest', "Invalid object identifier '%s'." % (object_id,))
        types = payload.get('types')
        wanted = {'user', 'group', 'device'}
        if types is not None:
            if not isinstance(types, list) or not all(isinstance(item, str) for item in types):
                raise GraphFault(400, 'Request_BadRequest', "The parameter 'types' must be a collection of strings.")
            lowered = {item.lower().replace('microsoft.graph.', '') for item in types}
            known = {'user', 'group', 'device', 'directoryobject', 'serviceprincipal', 'application', 'orgcontact', 'administrativeunit'}
            unknown = sorted(lowered - known)
            if unknown:
                raise GraphFault(400, 'Request_BadRequest', "Unsupported type '%s' in the parameter 'types'." % unknown[0])
            if 'directoryobject' not in lowered:
                wanted = lowered & wanted
        directory = call.tenant.directory
        defaults = {'user': USER_DEFAULT, 'group': GROUP_DEFAULT, 'device': DEVICE_DEFAULT}
        value, seen = [], set()
        for object_id in ids:
            found = directory.get(object_id)
            if found is None or object_id.lower() in seen or found[0] not in wanted:
                continue
            seen.add(object_id.lower())
            value.append(odata.project(found[1], None, defaults[found[0]], ODATA_TYPES[found[0]]))
        return Response.json_response(200, {'@odata.context': self._context(call, 'directoryObjects'), 'value': value}, JSON_TYPE)

    def _get_directory_object(self, call: Call, object_id: str, query: dict[str, str]) -> Response:
        self._only(query, '$select')
        found = call.tenant.directory.get(object_id)
        if found is None:
            raise self._not_found(object_id)
        defaults = {'user': USER_DEFAULT, 'group': GROUP_DEFAULT, 'device': DEVICE_DEFAULT}
        body = {'@odata.context': self._context(call, 'directoryObjects/$entity')}
        body.update(odata.project(found[1], None, defaults[found[0]], ODATA_TYPES[found[0]]))
        return Response.json_response(200, body, JSON_TYPE)

    def _organization(self, call: Call) -> Response:
        tenant = call.tenant
        domains = tenant.domains or ['%s.onmicrosoft.com' % tenant.tenant_id.split('-')[0]]
        value = [{'id': tenant.tenant_id, 'displayName': tenant.display_name,
                  'verifiedDomains': [{'name': name, 'isDefault': index == 0, 'isInitial': name.endswith('.onmicrosoft.com'),
                                       'type': 'Managed', 'capabilities': 'Email, OfficeCommunicationsOnline'}
                                      for index, name in enumerate(domains)]}]
        return Response.json_response(200, {'@odata.context': self._context(call, 'organization'), 'value': value}, JSON_TYPE)

    # -- checkMemberGroups ----------------------------------------------------------------------------------------

    def _check_member_groups(self, call: Call, kind: str, key: str, key_syntax: bool = False) -> Response:
        """POST {users|groups|directoryObjects}/{id}/checkMemberGroups: which of ``groupIds`` the object is a member of.

        Transitive, like Graph: membership through nested groups counts. Ids of groups that do not exist are left out
        of the answer, as are duplicates.
        """
        self._allow(call.request.method, 'POST')
        # documented least privilege: User.Read.All and GroupMember.Read.All (or Group.Read.All), or Directory.Read.All
        for permission in {'user': ('users', 'members'), 'group': ('members',), 'directoryObject': ('getByIds',)}[kind]:
            self._require(call, permission)
        directory = call.tenant.directory
        if kind == 'user':
            if key.startswith('$') and not key_syntax:
                raise GraphFault(400, 'BadRequest', "Bad Request - Error in query syntax: '%s' is not a valid segment; a key that starts with "
                                                    "'$' must use the users('...') syntax." % key)
            found = directory.users.get(key.lower()) if is_guid(key) else directory.user_by_upn(key)
        else:
            if not is_guid(key):
                raise GraphFault(400, 'Request_BadRequest', "Invalid object identifier '%s'." % key)
            found = directory.groups.get(key.lower()) if kind == 'group' else (directory.get(key) or (None, None))[1]
        if found is None:
            raise self._not_found(key)
        payload = self._json_body(call.request)
        group_ids = payload.get('groupIds') if isinstance(payload, dict) else None
        if not isinstance(group_ids, list) or not all(isinstance(item, str) for item in group_ids):
            raise GraphFault(400, 'Request_BadRequest', "The request body must contain the parameter 'groupIds' (a collection of group ids).")
        if len(group_ids) > MAX_CHECK_GROUPS:
            raise GraphFault(400, 'Request_BadRequest', "Number of included identifiers cannot exceed '%d'." % MAX_CHECK_GROUPS)
        for group_id in group_ids:
            if not is_guid(group_id):
                raise GraphFault(400, 'Request_BadRequest', "Invalid object identifier '%s'." % group_id)
        member_of = directory.transitive_groups(found['id'])
        value: list[str] = []
        for group_id in group_ids:
            if group_id.lower() in member_of and directory.groups[group_id.lower()]['id'] not in value:
                value.append(directory.groups[group_id.lower()]['id'])
        return Response.json_response(200, {'@odata.context': self._context(call, 'Collection(Edm.String)'), 'value': value}, JSON_TYPE)

    # -- $batch -------------------------------------------------------------------------------------------------

    def batch(self, call: Call, parent_log: dict) -> Response:
        """POST /$batch: every item goes through authorization, faults, routing and the log like a request of its own."""
        request = call.request
        try:
            payload = self._json_body(request)
            items = payload.get('requests') if isinstance(payload, dict) else None
            if not isinstance(items, list) or not items:
                raise GraphFault(400, 'BadRequest', 'Invalid batch payload format: a non-empty "requests" array is required.')
            if len(items) > MAX_BATCH:
                raise GraphFault(400, 'BadRequest', 'The number of requests in the batch (%d) exceeds the limit of %d.' % (len(items), MAX_BATCH))
            seen: set[str] = set()
            for item in items:
                if not isinstance(item, dict) or not all(isinstance(item.get(name), str) and item.get(name) for name in ('id', 'method', 'url')):
                    raise GraphFault(400, 'BadRequest', 'Invalid batch payload format: every request needs "id", "method" and "url".')
                if item['id'] in seen:
                    raise GraphFault(400, 'BadRequest', "Request id '%s' is used more than once in the batch; ids must be unique." % item['id'])
                seen.add(item['id'])
                headers = Headers(item.get('headers') or {})
                if 'body' in item and item['body'] is not None and 'Content-Type' not in headers:
                    raise GraphFault(400, 'BadRequest', 'Write request id : %s does not contain Content-Type header or body.' % item['id'])
                for dependency in item.get('dependsOn') or []:
                    if dependency not in seen or dependency == item['id']:
                        raise GraphFault(400, 'BadRequest', "Request id '%s' depends on '%s', which is not an earlier request of the batch."
                                         % (item['id'], dependency))
        except GraphFault as fault:
            return error_response(fault, request.request_id, request.client_request_id)
        statuses: dict[str, int] = {}
        responses = []
        for item in items:
            result = self._batch_item(call, item, statuses, parent_log)
            statuses[item['id']] = result['status']
            responses.append(result)
        # Graph may answer items in any order; use a fixed but shuffled order so clients cannot rely on it.
        responses.sort(key=lambda entry: hashlib.sha256(entry['id'].encode('utf-8')).hexdigest())
        headers = graph_headers(request.request_id, request.client_request_id)
        return Response.json_response(200, {'responses': responses}, JSON_TYPE, headers)

    def _batch_item(self, call: Call, item: dict, statuses: dict[str, int], parent_log: dict) -> dict:
        started = time.time()
        item_request_id = str(uuid.uuid4())
        url = item['url']
        headers = Headers(item.get('headers') or {})
        headers['Authorization'] = call.request.headers.get('Authorization') or ''
        if call.request.client_request_id and 'client-request-id' not in headers:
            headers['client-request-id'] = call.request.client_request_id
        body_value = item.get('body')
        body = b''
        if body_value is not None:
            body = body_value.encode('utf-8') if isinstance(body_value, str) else json.dumps(body_value).encode('utf-8')
        target = url if url.startswith('/') else '/' + url
        item_request = Request.from_target(item['method'], target, headers, body, item_request_id)
        item_call = Call(item_request, call.tenant, call.claims, call.version, call.base)
        log = {'tenant': call.tenant.tenant_id, 'kind': 'batch-item', 'method': item_request.method,
               'path': '/%s%s' % (call.version, item_request.path), 'query': dict(item_request.query), 'batch_request_id': call.request.request_id,
               'batch_item_id': item['id'], 'request_id': item_request_id, 'client_request_id': item_request.client_request_id,
               'app_id': call.claims.get('appid')}
        if body_value is not None:
            log['body'] = body_value
        failed = [dep for dep in item.get('dependsOn') or [] if statuses.get(dep, 200) >= 400]
        if url.lower().startswith(('http://', 'https://')):
            response = error_response(GraphFault(400, 'BadRequest', 'Invalid request URL: batch request URLs are relative, e.g. /users.'),
                                      item_request_id, item_request.client_request_id)
        elif failed:
            response = error_response(GraphFault(424, 'FailedDependency', 'The request depends on request %s, which failed.' % failed[0]),
                                      item_request_id, item_request.client_request_id)
        else:
            response = self.emulator.apply_fault('batch-item', call.tenant.tenant_id, item_request, (item_request.path,))
            if response is not None and response.drop:
                # A single item cannot lose its connection: the gateway answers it as timed out instead.
                response = fault_response(504, None, None, item_request_id, item_request.client_request_id)
            if response is None:
                response = self.handle(item_call, item_request.path)
        log.update({'status': response.status, 'time': started, 'duration': round(time.time() - started, 6)})
        self.emulator.log.append(log)
        item_headers = {name: value for name, value in response.headers.items()
                        if name.lower() in ('content-type', 'retry-after', 'cache-control', 'x-ms-resource-unit', 'location', 'odata-version')}
        result: dict = {'id': item['id'], 'status': response.status, 'headers': item_headers}
        if response.body:
            content_type = (response.headers.get('Content-Type') or '').lower()
            if content_type.startswith('text/plain') and isinstance(response.json_body, str) and response.json_body.isdigit():
                result['body'] = int(response.json_body)
            else:
                result['body'] = response.json_body
        return result
