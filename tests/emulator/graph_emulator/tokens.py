# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Access tokens the emulator issues (RS256 JWTs shaped like Entra's v1 Graph tokens) and their validation."""

from __future__ import annotations

import functools
import time
import uuid
from dataclasses import dataclass, field

import jwt

from .pki import SigningKey

GRAPH_APP_ID = '00000003-0000-0000-c000-000000000000'
TOKEN_EXCHANGE_AUDIENCE = 'api://AzureADTokenExchange'
# Entra's message for an expired token, for freshly verified and cached tokens alike
EXPIRED_MESSAGE = 'Lifetime validation failed, the token is expired.'


@dataclass
class Principal:
    """Something that can get a token: an app registration (service principal) or a managed identity."""

    kind: str                  # 'app' or 'managed_identity'
    name: str                  # seed name, e.g. 'automation'
    client_id: str
    object_id: str             # service principal object id (oid)
    display_name: str
    permissions: list[str] = field(default_factory=list)
    identity_type: str = ''    # SystemAssigned / UserAssigned for managed identities
    resource_id: str = ''


class InvalidToken(Exception):
    """A bearer token Graph does not accept; the message is Graph's."""


class TokenService:
    """Issues and validates the Graph access tokens of every tenant (one signing key per emulator run)."""

    def __init__(self, key: SigningKey, authority_host: str) -> None:
        self.key = key
        self.authority_host = authority_host
        self._verified: dict[tuple[str, tuple[str, ...]], dict] = {}  # (token, audiences) -> claims verified before

    def issuer(self, tenant_id: str) -> str:
        return 'https://sts.windows.net/%s/' % tenant_id

    def issue(self, tenant_id: str, principal: Principal, audience: str, lifetime: int, credential: str) -> tuple[str, int]:
        """Return (token, exp). `credential` is 'secret', 'certificate', 'federated' or 'managed_identity'."""
        now = int(time.time())
        exp = now + lifetime
        claims = {
            'aud': audience,
            'iss': self.issuer(tenant_id),
            'iat': now,
            'nbf': now - 300 if lifetime > 0 else exp - 60,
            'exp': exp,
            'aio': uuid.uuid4().hex,
            'app_displayname': principal.display_name,
            'appid': principal.client_id,
            'appidacr': '1' if credential == 'secret' else '2',
            'idp': self.issuer(tenant_id),
            'idtyp': 'app',
            'oid': principal.object_id,
            'rh': uuid.uuid4().hex,
            'roles': list(principal.permissions),
            'sub': principal.object_id,
            'tenant_region_scope': 'EU',
            'tid': tenant_id,
            'uti': uuid.uuid4().hex[:22],
            'ver': '1.0',
            'wids': ['0997a1d0-0d1d-4acb-b408-d5ca73121e90'],
            'xms_tcdt': 1600000000,
        }
        if principal.kind == 'managed_identity':
            claims['xms_mirid'] = principal.resource_id
            claims['appidacr'] = '2'
        token = jwt.encode(claims, self.key.key, algorithm='RS256', headers={'kid': self.key.kid, 'x5t': self.key.kid})
        return token, exp

    def validate(self, token: str, audiences: list[str]) -> dict:
        """The verified claims, or InvalidToken with the message Graph would give.

        A token verified before (against the same audiences) only has its lifetime checked again: the signature check
        is the costliest part of a $batch of cheap lookups, and its outcome cannot change for the same token.
        """
        key = (token, tuple(audiences))
        known = self._verified.get(key)
        if known is not None:
            # no nbf check: the token passed it when it was verified, and time only moves forward
            if known['exp'] <= time.time():
                raise InvalidToken(EXPIRED_MESSAGE)
            return dict(known)
        claims = self._verify(token, audiences)
        if len(self._verified) >= 10000:
            self._verified.clear()
        self._verified[key] = claims
        return dict(claims)

    def _verify(self, token: str, audiences: list[str]) -> dict:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken('IDX14100: JWT is not well formed, there are no dots (.). The token needs to be in JWS or JWE Compact '
                               'Serialization Format.' if '.' not in token else 'Access token validation failure. Invalid token.')
        if header.get('kid') != self.key.kid:
            raise InvalidToken('Access token validation failure. The token signature could not be verified.')
        try:
            claims = jwt.decode(token, self.key.public_key, algorithms=['RS256'], audience=audiences,
                                options={'require': ['exp', 'aud', 'tid']})
        except jwt.ExpiredSignatureError:
            raise InvalidToken(EXPIRED_MESSAGE)
        except jwt.InvalidAudienceError:
            raise InvalidToken('Access token validation failure. Invalid audience.')
        except jwt.ImmatureSignatureError:
            raise InvalidToken('Lifetime validation failed, the token is not yet valid.')
        except jwt.PyJWTError:
            raise InvalidToken('Access token validation failure. The token signature could not be verified.')
        return claims


def unverified_claims(token: str) -> dict:
    """Claims without any check (only used to attribute a rejected request to a tenant in the log)."""
    return dict(_decoded(token))


@functools.lru_cache(maxsize=1024)  # every request of a run carries the same token
def _decoded(token: str) -> dict:
    try:
        claims = jwt.decode(token, options={'verify_signature': False})
    except jwt.PyJWTError:
        return {}
    return claims if isinstance(claims, dict) else {}


class WorkloadIssuer:
    """The emulator's stand-in for a Kubernetes service account issuer (workload identity federation)."""

    def __init__(self, key: SigningKey, issuer: str) -> None:
        self.key = key
        self.issuer = issuer

    def mint(self, subject: str, audience: str = TOKEN_EXCHANGE_AUDIENCE, lifetime: int = 86400) -> str:
        now = int(time.time())
        claims = {
            'aud': [audience],
            'iss': self.issuer,
            'sub': subject,
            'iat': now,
            'nbf': now - 60 if lifetime > 0 else now + lifetime - 60,
            'exp': now + lifetime,
            'kubernetes.io': {'namespace': subject.split(':')[2] if subject.count(':') >= 3 else 'default'},
        }
        return jwt.encode(claims, self.key.key, algorithm='RS256', headers={'kid': self.key.kid})
