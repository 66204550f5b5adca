"""TLS for client connections: a self-signed certificate for tests and single machines, and
the NATS ``tls`` block that switches it on.

    files = self_signed(srv.data_dir / "tls")      # cert.pem, key.pem (made once, then reused)
    enable_tls(srv, files)                         # clients must now use TLS: tls://host:port
    ctx = files.client_context()                   # an ssl.SSLContext trusting that certificate
    nc = await nats.connect(f"tls://127.0.0.1:{srv.settings.port}", tls=ctx, ...)

With a certificate from a real authority, give its files to :class:`TLSFiles` directly.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from evfabric.broker.server import BrokerServer
from evfabric.core.errors import ConfigError

__all__ = ["TLSFiles", "enable_tls", "self_signed"]


@dataclass(frozen=True)
class TLSFiles:
    """A PEM certificate (chain) and its private key; ``ca`` verifies it (the cert itself if self-signed)."""

    cert: Path
    key: Path
    ca: Path | None = None

    def client_context(self) -> ssl.SSLContext:
        """An SSL context for clients that trusts ``ca`` (or the system's authorities if None)."""
        ctx = ssl.create_default_context(cafile=str(self.ca) if self.ca else None)
        return ctx

    def nats_block(self, timeout: float = 2.0) -> dict[str, object]:
        """The NATS ``tls`` configuration block."""
        return {"cert_file": str(self.cert), "key_file": str(self.key), "timeout": timeout}


def self_signed(directory: str | os.PathLike[str], hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
                days: int = 365) -> TLSFiles:
    """A self-signed certificate for ``hosts`` in ``directory`` (``cert.pem``, ``key.pem``),
    made with the ``cryptography`` package; existing files are reused."""
    d = Path(directory)
    cert_path, key_path = d / "cert.pem", d / "key.pem"
    if cert_path.exists() and key_path.exists():
        return TLSFiles(cert_path, key_path, cert_path)
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ConfigError(f"tls: generating a certificate needs the 'cryptography' package ({exc})") from None
    d.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    alt: list[x509.GeneralName] = []
    for h in hosts:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            alt.append(x509.DNSName(h))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    os.chmod(key_path, 0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return TLSFiles(cert_path, key_path, cert_path)


def enable_tls(server: BrokerServer, files: TLSFiles) -> None:
    """Require TLS on ``server``'s client port (reloading it if it runs)."""
    server.settings.extra["tls"] = files.nats_block()
    if server.running:
        server.reload()
