"""HTTPS for clients that fix the scheme to https (Tencent's API is HTTPS-only).

``serve --tls self-signed`` creates, once, a local certificate authority and a certificate for
``localhost``, ``127.0.0.1`` and ``::1`` signed by it, in ``<data folder>/tls/``; clients trust the
CA file. ``serve --tls-cert FILE --tls-key FILE`` uses a certificate of the user's own.
Certificates are made with the ``cryptography`` package.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .. import private

HOSTS = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class SelfSigned:
    ca_cert: Path
    cert: Path
    key: Path


def _write_private(path: Path, data: bytes) -> None:
    with private.open_private(path, "wb") as f:
        f.write(data)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "timserver (local)"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def ensure_self_signed(folder: Path) -> SelfSigned:
    """The local CA and server certificate in ``folder``, created on first use."""
    files = SelfSigned(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem")
    if files.ca_cert.exists() and files.cert.exists() and files.key.exists():
        for path in (files.ca_cert, files.cert, files.key):
            private.restrict(path)
        return files
    private.make_folder(folder)  # 0700, and the data folder above it if it is new
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("timserver local CA")
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    names += [x509.IPAddress(ipaddress.ip_address(h)) for h in HOSTS[1:]]
    cert = (
        x509.CertificateBuilder().subject_name(_name("localhost")).issuer_name(ca_name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    _write_private(files.ca_cert, ca_cert.public_bytes(pem))  # owner only, as all of the folder
    _write_private(files.cert, cert.public_bytes(pem))
    _write_private(files.key, key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
    # The CA's key is not kept: nothing else can ever be signed with it.
    return files


def trust_instructions(ca: Path) -> str:
    return (
        f"Clients must trust the local CA {ca}:\n"
        f"  Python (requests / httpx):  export REQUESTS_CA_BUNDLE={ca} SSL_CERT_FILE={ca}\n"
        f"  curl:                       curl --cacert {ca} ...\n"
        f"  Node.js:                    export NODE_EXTRA_CA_CERTS={ca}\n"
        f"  Java:                       keytool -importcert -noprompt -alias timserver-local-ca "
        f"-file {ca} -keystore timserver-truststore.jks -storepass changeit\n"
        f"                              (then run with -Djavax.net.ssl.trustStore="
        f"timserver-truststore.jks -Djavax.net.ssl.trustStorePassword=changeit)"
    )
