"""The cluster's certificates and keys, made as kubeadm makes them.

One CA signs the API server's serving certificate (valid for every name a client
uses: the `kubernetes` Service's cluster IP and DNS names, the node's address,
localhost) and the client certificates of whoever talks to it: `admin`
(`system:masters`, the kubeconfig people and tests use), the controller manager,
the scheduler and the node agent, each with the identity its real counterpart
has, so the API server's RBAC sees the same users. A separate key pair signs and
verifies ServiceAccount tokens.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=2)


@dataclass(frozen=True)
class Credential:
    """A client certificate and its key, as files a kubeconfig names."""

    certificate: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    ca: Path
    ca_key: Path
    server: Credential
    service_account_key: Path
    service_account_public: Path
    admin: Credential
    controller_manager: Credential
    scheduler: Credential
    node: Credential


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)
    return path


def _name(common: str, organisation: str | None = None) -> x509.Name:
    parts = [x509.NameAttribute(NameOID.COMMON_NAME, common)]
    if organisation:
        parts.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation))
    return x509.Name(parts)


def _builder(subject: x509.Name, issuer: x509.Name, public: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
    )


def _pem(certificate: x509.Certificate, path: Path) -> Path:
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


def make_pki(directory: Path, server_ips: list[str], server_names: list[str]) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca_name = _name("ragcorp-cluster-ca")
    ca = (
        _builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )

    def issue(file: str, subject: x509.Name, usage: x509.ObjectIdentifier, names: list[x509.GeneralName]) -> Credential:
        key = _key()
        builder = _builder(subject, ca_name, key.public_key()).add_extension(
            x509.ExtendedKeyUsage([usage]), critical=False
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        certificate = builder.sign(ca_key, hashes.SHA256())
        return Credential(_pem(certificate, directory / f"{file}.crt"), _write_key(key, directory / f"{file}.key"))

    server_alt = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in server_ips] + [
        x509.DNSName(name) for name in server_names
    ]
    client = ExtendedKeyUsageOID.CLIENT_AUTH
    service_account = _key()
    public = directory / "sa.pub"
    public.write_bytes(
        service_account.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return Pki(
        ca=_pem(ca, directory / "ca.crt"),
        ca_key=_write_key(ca_key, directory / "ca.key"),
        server=issue("apiserver", _name("kube-apiserver"), ExtendedKeyUsageOID.SERVER_AUTH, server_alt),
        service_account_key=_write_key(service_account, directory / "sa.key"),
        service_account_public=public,
        admin=issue("admin", _name("kubernetes-admin", "system:masters"), client, []),
        controller_manager=issue("controller-manager", _name("system:kube-controller-manager"), client, []),
        scheduler=issue("scheduler", _name("system:kube-scheduler"), client, []),
        node=issue("node", _name("system:node:ragcorp-node", "system:nodes"), client, []),
    )
