"""Throwaway TLS material for the HTTPS / HTTP/2 emulators.

The APNs and Web Push emulators must be reached over real TLS (aioapns and pywebpush
verify certificates and hostnames), so this module creates, once per process, a private
CA and a server certificate valid for ``IP:127.0.0.1`` and ``DNS:localhost``. The PEM
files live in a temporary directory removed at interpreter exit. Clients trust the CA via
:data:`ca_file` (or :func:`client_context`); servers use :func:`server_context`.
"""

from __future__ import annotations

import atexit
import datetime
import ipaddress
import os
import shutil
import ssl
import tempfile
import threading
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["TlsFiles", "client_context", "server_context", "tls_files", "use_directory"]


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the generated PEM files."""

    directory: str
    ca_file: str
    cert_file: str
    key_file: str


_lock = threading.Lock()
_files: TlsFiles | None = None


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Messenger push emulators"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _generate(directory: str) -> TlsFiles:
    """Create CA + leaf; EC P-256 keeps generation and handshakes cheap."""
    now = datetime.datetime.now(datetime.UTC)
    not_before = now - datetime.timedelta(days=1)
    not_after = now + datetime.timedelta(days=30)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Push Emulator Test CA")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.DNSName("localhost"),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )

    files = TlsFiles(
        directory=directory,
        ca_file=os.path.join(directory, "ca.pem"),
        cert_file=os.path.join(directory, "server.pem"),
        key_file=os.path.join(directory, "server-key.pem"),
    )
    with open(files.ca_file, "wb") as f:
        f.write(ca_cert.public_bytes(serialization.Encoding.PEM))
    with open(files.cert_file, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(files.key_file, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return files


def use_directory(directory: str) -> TlsFiles:
    """Generate the process-wide CA/server files in ``directory`` (kept after exit), for a
    long-running emulator process whose clients read the CA from a known place."""
    global _files
    with _lock:
        if _files is not None:
            raise RuntimeError("TLS files were already generated")
        os.makedirs(directory, exist_ok=True)
        _files = _generate(directory)
        return _files


def tls_files() -> TlsFiles:
    """Return the process-wide CA/server files, generating them on first use."""
    global _files
    with _lock:
        if _files is None:
            directory = tempfile.mkdtemp(prefix="push-emulator-tls-")
            atexit.register(shutil.rmtree, directory, True)
            _files = _generate(directory)
        return _files


def server_context(alpn: tuple[str, ...] = ("http/1.1",)) -> ssl.SSLContext:
    """A fresh server-side context; each server gets its own because ALPN differs."""
    files = tls_files()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(files.cert_file, files.key_file)
    ctx.set_alpn_protocols(list(alpn))
    return ctx


def client_context() -> ssl.SSLContext:
    """A client context trusting only the emulator CA (what tests hand to libraries)."""
    return ssl.create_default_context(cafile=tls_files().ca_file)


def __getattr__(name: str) -> Any:
    """Lazy module attribute ``ca_file`` so importing this module generates nothing."""
    if name == "ca_file":
        return tls_files().ca_file
    raise AttributeError(name)
