# Copyright (c) entra.autopilot contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Keys and certificates: the emulator's CA, its TLS server certificate, app certificates and signing keys."""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import os
import uuid
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def b64url(data: bytes) -> str:
    """Base64url without padding (JOSE style)."""
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode('ascii')


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _name(common_name: str, organization: str = 'entra.autopilot graph emulator') -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def write_private(path: str, data: bytes) -> None:
    """Write a file readable only by the owner (it may hold a key)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'wb') as handle:
        handle.write(data)


def write_public(path: str, data: bytes) -> None:
    with open(path, 'wb') as handle:
        handle.write(data)


class CertificateAuthority:
    """A throw-away CA that signs the emulator's TLS certificate."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        self.name = _name('entra.autopilot emulator CA %s' % uuid.uuid4().hex[:8])
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )

    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue_server_certificate(self, hosts: list[str]) -> tuple[bytes, bytes]:
        """Return (certificate chain PEM, key PEM) for a TLS server answering on the given hosts/IPs."""
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(hosts[0]))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=29))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        return cert.public_bytes(serialization.Encoding.PEM) + self.pem(), key_pem


@dataclass
class AppCertificate:
    """A self-signed RSA certificate an app registration trusts for client assertions."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @classmethod
    def generate(cls, common_name: str) -> AppCertificate:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = _now()
        name = _name(common_name, 'Contoso (emulated app credential)')
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=365))
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def sha1_hex(self) -> str:
        """The thumbprint as Entra shows it (upper-case SHA-1 hex)."""
        return hashlib.sha1(self.der).hexdigest().upper()  # nosec - SHA-1 thumbprints are what Entra uses

    @property
    def x5t(self) -> str:
        return b64url(hashlib.sha1(self.der).digest())  # nosec

    @property
    def x5t_s256(self) -> str:
        return b64url(hashlib.sha256(self.der).digest())

    def pem(self, password: str | None = None) -> bytes:
        """Private key followed by the certificate, the layout msal and Azure CLI read."""
        encryption: serialization.KeySerializationEncryption = serialization.NoEncryption()
        if password:
            encryption = serialization.BestAvailableEncryption(password.encode('utf-8'))
        key = self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
        return key + self.certificate.public_bytes(serialization.Encoding.PEM)

    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def pfx(self, password: str) -> bytes:
        return pkcs12.serialize_key_and_certificates(b'app', self.key, self.certificate, None,
                                                     serialization.BestAvailableEncryption(password.encode('utf-8')))


class SigningKey:
    """An RSA key that signs JWTs (access tokens or workload identity tokens), published as a JWK."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = uuid.uuid4().hex

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.key.public_key()

    def jwk(self) -> dict:
        numbers = self.public_key.public_numbers()

        def encode(value: int) -> str:
            return b64url(value.to_bytes((value.bit_length() + 7) // 8, 'big'))

        return {'kty': 'RSA', 'use': 'sig', 'alg': 'RS256', 'kid': self.kid, 'n': encode(numbers.n), 'e': encode(numbers.e)}
