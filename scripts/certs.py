#!/usr/bin/env python3
"""`make certs`: a local certificate authority and the stack's server certificate, for
sharing the stack behind TLS (STACK_AUTH; README, "Share it with your team").

    python3 scripts/certs.py [--dir .secrets/tls] [--force] [--name NAME]...

Writes, into the folder (default `<SECRETS_DIR>/tls`, owner-only):
  ca.pem          the CA's certificate: what a browser or an app is told to trust
  ca-key.pem      the CA's key (never mounted into a container)
  server.pem      the server certificate every published port presents, signed by the CA,
  server-key.pem  and its key; valid for localhost, 127.0.0.1, STACK_HOST, BIND_ADDRESS,
                  each compose service's name and every --name given
Existing files are kept (a second run changes nothing) unless --force, a name the stack is
reached by is missing from the server certificate (STACK_HOST or BIND_ADDRESS changed) or it
ends within 30 days: then the server certificate is issued anew by the same CA (rotation:
`make certs FORCE=1`, then `make reload`; clients keep trusting ca.pem). To use your own,
set STACK_TLS_CERT_FILE, STACK_TLS_KEY_FILE and STACK_TLS_CA_FILE in .env instead.

Needs the `cryptography` package (the project's venv: `make certs` runs it from there).
"""
from __future__ import annotations

import argparse
import datetime
import ipaddress
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from scripts import compose_info, envfile  # noqa: E402

CA_DAYS, SERVER_DAYS = 3650, 825  # 825 days: the longest a browser accepts for a server certificate
# The stack's services that serve TLS when it is shared, by their compose names (the
# stack's own containers reach them so).
SERVICES = ("prometheus", "alertmanager", "grafana", "jaeger", "otel-collector", "otel-edge", "shop", "inventory",
            "alert-sink")


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path: Path, data: bytes, mode: int) -> None:
    envfile.write_atomic(path, data.decode(), mode=mode)


def make_ca(now: datetime.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "observability stack local CA")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def make_server(ca_key, ca_cert: x509.Certificate, names: list[str],
                now: datetime.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _key()
    alt: list[x509.GeneralName] = []
    for n in dict.fromkeys(names):
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            alt.append(x509.DNSName(n))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


def names_for(settings: dict[str, str], extra: list[str]) -> list[str]:
    names = ["localhost", "127.0.0.1", "::1"]
    for key in ("STACK_HOST", "BIND_ADDRESS"):
        value = settings.get(key, "").strip()
        if value and value not in ("0.0.0.0", "::"):
            names.append(value)
    return [*names, *SERVICES, *extra]


def stale(path: Path, names: list[str], now: datetime.datetime) -> bool:
    """No server certificate yet, or one that lacks a name the stack is now reached by
    (STACK_HOST or BIND_ADDRESS changed), or that ends within 30 days."""
    if not path.exists():
        return True
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    try:
        alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return True
    have = {str(v) for v in alt.get_values_for_type(x509.IPAddress)} | set(alt.get_values_for_type(x509.DNSName))
    wanted = set()
    for n in names:
        try:
            wanted.add(str(ipaddress.ip_address(n)))
        except ValueError:
            wanted.add(n)
    return not wanted <= have or cert.not_valid_after_utc - now < datetime.timedelta(days=30)


def ensure(directory: Path, names: list[str], force: bool = False) -> list[str]:
    """The CA and server certificate in `directory`; returns the files written."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    written = []
    if (directory / "ca.pem").exists() and (directory / "ca-key.pem").exists():
        ca_key = serialization.load_pem_private_key((directory / "ca-key.pem").read_bytes(), None)
        ca_cert = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
    else:
        ca_key, ca_cert = make_ca(now)
        _write(directory / "ca-key.pem", _pem_key(ca_key), 0o600)
        _write(directory / "ca.pem", ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
        written += ["ca.pem", "ca-key.pem"]
        force = True  # a new CA: the server certificate must be its own
    if force or stale(directory / "server.pem", names, now):
        key, cert = make_server(ca_key, ca_cert, names, now)
        # Owner-only here; scripts/auth.py copies it to the folder the services read.
        _write(directory / "server-key.pem", _pem_key(key), 0o600)
        _write(directory / "server.pem", cert.public_bytes(serialization.Encoding.PEM), 0o644)
        written += ["server.pem", "server-key.pem"]
    return written


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", type=Path, help="default: <SECRETS_DIR>/tls")
    ap.add_argument("--force", action="store_true", help="issue the server certificate anew (same CA)")
    ap.add_argument("--name", action="append", default=[], help="another name or address the stack is reached by")
    a = ap.parse_args(argv)
    directory = a.dir or envfile.secrets_dir(REPO / ".env") / "tls"
    written = ensure(directory, names_for(compose_info.settings(), a.name), a.force)
    for name in written:
        print(f"wrote {directory / name}")
    if not written:
        print(f"{directory}: the CA and server certificate are there (--force issues a new server certificate)")
    print(f"Trust {directory / 'ca.pem'} in your browser and apps (README, \"Share it with your team\"); "
          "`make reload` hands a new certificate to a running stack.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
