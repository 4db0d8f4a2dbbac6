# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The PUT rules of /policies/deviceRegistrationPolicy (graph-contract.md section 1), applied like Entra applies them."""

from __future__ import annotations

import copy
from typing import Any

from .directory import Directory, is_guid
from .errors import GraphFault

ALL = '#microsoft.graph.allDeviceRegistrationMembership'
ENUMERATED = '#microsoft.graph.enumeratedDeviceRegistrationMembership'
NONE = '#microsoft.graph.noDeviceRegistrationMembership'
MEMBERSHIP_TYPES = (ALL, ENUMERATED, NONE)
MFA_VALUES = ('notRequired', 'required')

# What "Tenant registration policy is missing a value for ..." names for each updatable property.
UPDATABLE = (
    ('userDeviceQuota', 'quota'),
    ('multiFactorAuthConfiguration', 'multiFactorAuthConfiguration'),
    ('azureADRegistration', 'azureADRegistration'),
    ('azureADJoin', 'azureADJoin'),
    ('localAdminPassword', 'localAdminPassword'),
)
# Properties of the pre-2023 shape: the Entra blog says they are ignored when sent next to the current ones.
LEGACY_IGNORED = ('appliesTo', 'allowedUsers', 'allowedGroups')
TOP_LEVEL_IGNORED = ('id', 'displayName', 'description', '@odata.context', '@odata.type', '@odata.id', '@odata.etag')
INT32_MAX = 2147483647


def _bad_request(message: str) -> GraphFault:
    return GraphFault(400, 'BadRequest', message)


def _invalid(message: str) -> GraphFault:
    return GraphFault(400, 'invalid_request', message)


def _unknown_property(name: str, type_name: str) -> GraphFault:
    return _bad_request("The property '%s' does not exist on type 'microsoft.graph.%s'. Make sure to only use property names that are "
                        "defined by the type or mark the type as open type." % (name, type_name))


def _check_properties(obj: dict, allowed: tuple[str, ...], type_name: str) -> None:
    for name in obj:
        if name not in allowed and name != '@odata.type':
            raise _unknown_property(name, type_name)


def _object(value: Any, where: str, type_name: str) -> dict:
    if not isinstance(value, dict):
        raise _bad_request("Cannot convert the value of '%s' to the type 'microsoft.graph.%s': an object is expected." % (where, type_name))
    return value


def _normalise_type(value: Any, where: str) -> str:
    if value is None:
        raise _invalid('Tenant registration policy is missing a value for %s.@odata.type' % where)
    if not isinstance(value, str):
        raise _bad_request("Invalid value for '%s.@odata.type'." % where)
    name = value if value.startswith('#') else '#' + value
    if name not in MEMBERSHIP_TYPES:
        raise _bad_request("A type named '%s' could not be resolved by the model. When a model is available, each type name must resolve to "
                           "a valid type." % value.lstrip('#'))
    return name


def _membership(value: Any, where: str, kinds: dict[str, str], directory: Directory, stored: dict | None) -> dict:
    """Validate one deviceRegistrationMembership; `kinds` maps list name -> object kind ('users' -> 'user')."""
    obj = _object(value, where, 'deviceRegistrationMembership')
    odata_type = _normalise_type(obj.get('@odata.type'), where)
    if odata_type != ENUMERATED:
        _check_properties(obj, (), odata_type.rsplit('.', 1)[-1])
        return {'@odata.type': odata_type}
    _check_properties(obj, ('users', 'groups'), 'enumeratedDeviceRegistrationMembership')
    result: dict = {'@odata.type': odata_type}
    for list_name, kind in kinds.items():
        ids = obj.get(list_name)
        if ids is None:
            ids = []
        if not isinstance(ids, list) or not all(isinstance(item, str) for item in ids):
            raise _bad_request("Cannot convert the value of '%s.%s' to a collection of strings." % (where, list_name))
        already = set()
        if stored and stored.get('@odata.type') == ENUMERATED:
            already = {str(item).lower() for item in stored.get(list_name) or []}
        for item in ids:
            if not is_guid(item):
                raise _invalid("Invalid object identifier '%s' in %s.%s: object ids are GUIDs." % (item, where, list_name))
            if item.lower() in already:
                continue  # still listed, possibly deleted since: Entra keeps accepting it
            if directory.kind_of(item) != kind:
                raise _invalid("Object '%s' in %s.%s is not an existing %s in this tenant." % (item, where, list_name, kind))
        result[list_name] = list(ids)
    return result


def _same_membership(left: dict | None, right: dict | None) -> bool:
    def key(obj: dict | None) -> tuple:
        obj = obj or {}
        return (obj.get('@odata.type'), frozenset(str(i).lower() for i in obj.get('users') or []),
                frozenset(str(i).lower() for i in obj.get('groups') or []))
    return key(left) == key(right)


def apply_put(stored: dict, body: Any, directory: Directory, intune_enabled: bool) -> dict:
    """Return the new stored policy for a PUT body, or raise GraphFault the way Entra rejects it."""
    if not isinstance(body, dict):
        raise _bad_request('Empty Payload. JSON content expected.')
    for name, label in UPDATABLE:
        if body.get(name) is None:
            raise _invalid('Tenant registration policy is missing a value for %s' % label)
    allowed_top = tuple(name for name, _label in UPDATABLE) + TOP_LEVEL_IGNORED
    _check_properties(body, allowed_top, 'deviceRegistrationPolicy')

    quota = body['userDeviceQuota']
    if isinstance(quota, bool) or not isinstance(quota, int):
        raise _bad_request("Cannot convert the literal '%s' to the expected type 'Edm.Int32'." % (quota,))
    if quota < 0 or quota > INT32_MAX:
        raise _invalid('Invalid value for userDeviceQuota: %d. It must be between 0 and %d.' % (quota, INT32_MAX))

    mfa = body['multiFactorAuthConfiguration']
    if mfa not in MFA_VALUES:
        raise _bad_request("Cannot convert the literal '%s' to the expected type 'microsoft.graph.multiFactorAuthConfiguration'; "
                           "use notRequired or required." % (mfa,))

    stored_registration = stored.get('azureADRegistration') or {}
    registration = _object(body['azureADRegistration'], 'azureADRegistration', 'azureADRegistrationPolicy')
    _check_properties(registration, ('allowedToRegister', 'isAdminConfigurable') + LEGACY_IGNORED, 'azureADRegistrationPolicy')
    if registration.get('allowedToRegister') is None:
        raise _invalid('Tenant registration policy is missing a value for azureADRegistration.allowedToRegister')
    allowed_to_register = _membership(registration['allowedToRegister'], 'azureADRegistration.allowedToRegister',
                                      {'users': 'user', 'groups': 'group'}, directory, stored_registration.get('allowedToRegister'))
    if not _same_membership(allowed_to_register, stored_registration.get('allowedToRegister')):
        if intune_enabled or stored_registration.get('isAdminConfigurable') is False:
            raise _invalid('azureADRegistration cannot be changed: Microsoft Intune is enabled for this tenant, so registration is '
                           'managed by Intune (isAdminConfigurable is false).')

    stored_join = stored.get('azureADJoin') or {}
    join = _object(body['azureADJoin'], 'azureADJoin', 'azureADJoinPolicy')
    _check_properties(join, ('allowedToJoin', 'isAdminConfigurable', 'localAdmins') + LEGACY_IGNORED, 'azureADJoinPolicy')
    if join.get('allowedToJoin') is None:
        raise _invalid('Tenant registration policy is missing a value for azureADJoin.allowedToJoin')
    allowed_to_join = _membership(join['allowedToJoin'], 'azureADJoin.allowedToJoin', {'users': 'user', 'groups': 'group'},
                                  directory, stored_join.get('allowedToJoin'))
    local_admins = copy.deepcopy(stored_join.get('localAdmins'))
    if join.get('localAdmins') is not None:
        admins = _object(join['localAdmins'], 'azureADJoin.localAdmins', 'localAdminSettings')
        _check_properties(admins, ('enableGlobalAdmins', 'registeringUsers'), 'localAdminSettings')
        stored_admins = stored_join.get('localAdmins') or {}
        enable_global = admins.get('enableGlobalAdmins', stored_admins.get('enableGlobalAdmins', True))
        if not isinstance(enable_global, bool):
            raise _bad_request("Cannot convert the literal '%s' to the expected type 'Edm.Boolean'." % (enable_global,))
        local_admins = {'enableGlobalAdmins': enable_global}
        if admins.get('registeringUsers') is not None:
            local_admins['registeringUsers'] = _membership(admins['registeringUsers'], 'azureADJoin.localAdmins.registeringUsers',
                                                           {'users': 'user', 'groups': 'group'}, directory,
                                                           stored_admins.get('registeringUsers'))
        elif 'registeringUsers' in stored_admins:
            local_admins['registeringUsers'] = copy.deepcopy(stored_admins['registeringUsers'])
    if stored_join.get('isAdminConfigurable') is False:
        if not _same_membership(allowed_to_join, stored_join.get('allowedToJoin')) or local_admins != stored_join.get('localAdmins'):
            raise _invalid('azureADJoin cannot be changed: it is not admin configurable in this tenant (isAdminConfigurable is false).')

    laps = _object(body['localAdminPassword'], 'localAdminPassword', 'localAdminPasswordSettings')
    _check_properties(laps, ('isEnabled',), 'localAdminPasswordSettings')
    laps_enabled = laps.get('isEnabled', False)
    if not isinstance(laps_enabled, bool):
        raise _bad_request("Cannot convert the literal '%s' to the expected type 'Edm.Boolean'." % (laps_enabled,))

    new_join: dict = {'isAdminConfigurable': stored_join.get('isAdminConfigurable', True), 'allowedToJoin': allowed_to_join}
    if local_admins is not None:
        new_join['localAdmins'] = local_admins
    return {
        'id': stored.get('id', 'deviceRegistrationPolicy'),
        'displayName': stored.get('displayName', 'Device Registration Policy'),
        'description': stored.get('description', ''),
        'userDeviceQuota': quota,
        'multiFactorAuthConfiguration': mfa,
        'azureADRegistration': {
            'isAdminConfigurable': stored_registration.get('isAdminConfigurable', True),
            'allowedToRegister': allowed_to_register,
        },
        'azureADJoin': new_join,
        'localAdminPassword': {'isEnabled': laps_enabled},
    }
