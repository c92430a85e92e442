"""Certificates for the cluster's comms, and the Dask Security each side uses.

`transcriber certs DIR` writes a CA and two certificates signed by it: `coordinator` (the
scheduler and the server's client) and `node` (every node's worker). Both sides require TLS
and check the peer's certificate against the CA, so only holders of a certificate from this
CA can join; the node token (wire.py) is a second, separate check. Each certificate's common
name says its role, which the cluster's servers read to decide what a peer may ask (guard.py).
Dask does not check host names (a cluster has its own CA), so the certificates carry no
addresses and a node may move.
"""

from __future__ import annotations

import datetime
import ipaddress
import urllib.parse
from pathlib import Path
from typing import Any

ROLES = ("coordinator", "node")
CA_NAME = "ca"
VALID_DAYS = 3650
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def write_certs(folder: Path) -> list[Path]:
    """The CA and one certificate per role, keys readable by the owner only."""
    from cryptography.hazmat.primitives.asymmetric import ec

    folder.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _certificate(_name("transcriber cluster CA"), ca_key, ca_key, None, ca=True)
    written = [_write(folder, CA_NAME, ca_cert, None)]
    for role in ROLES:
        key = ec.generate_private_key(ec.SECP256R1())
        issuer = (ca_key, ca_cert.subject)
        cert = _certificate(_name(common_name(role)), key, ca_key, issuer, ca=False)
        written += [_write(folder, role, cert, key)]
    return written


def common_name(role: str) -> str:
    return f"transcriber {role}"


def peer_role(extra_info: dict[str, Any]) -> str:
    """The role a comm's peer certificate names (its `extra_info`): "coordinator", or "node"
    for any other peer, a certificate-less one included."""
    cert = extra_info.get("peercert") or {}
    names = [value for rdn in cert.get("subject", ()) for key, value in rdn if key == "commonName"]
    return "coordinator" if names == [common_name("coordinator")] else "node"


def _name(common: str) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _certificate(subject: Any, key: Any, signer: Any, issuer: Any, ca: bool) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if issuer is None else issuer[1])
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return builder.sign(signer, hashes.SHA256())


def _write(folder: Path, name: str, cert: Any, key: Any) -> Path:
    from cryptography.hazmat.primitives import serialization

    path = folder / f"{name}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        key_path = folder / f"{name}.key"
        key_path.touch(mode=0o600)
        key_path.chmod(0o600)
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return path


def security(tls_dir: Path | None, role: str) -> Any:
    """Dask Security for `role` from `tls_dir`; None (plain TCP) when no folder is given."""
    import distributed.security

    Security: Any = distributed.security.Security
    if tls_dir is None:
        return Security(require_encryption=False)
    ca, cert, key = (
        str(tls_dir / f"{CA_NAME}.pem"),
        str(tls_dir / f"{role}.pem"),
        str(tls_dir / f"{role}.key"),
    )
    for path in (ca, cert, key):
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path} is missing: run `transcriber certs {tls_dir}`")
    both = {"tls_client_cert": cert, "tls_client_key": key}
    if role == "coordinator":
        both |= {"tls_scheduler_cert": cert, "tls_scheduler_key": key}
    else:
        both |= {"tls_worker_cert": cert, "tls_worker_key": key}
    return Security(tls_ca_file=ca, require_encryption=True, **both)


def is_loopback(address: str) -> bool:
    """Whether a scheduler address or host ('tcp://127.0.0.1:8786', 'localhost') is local."""
    rest = address.split("://")[-1]
    host = urllib.parse.urlsplit("//" + rest).hostname or rest
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
