"""Who signs DFM's Content Credentials: the user's certificate and key, or a local test chain made on first use.

A C2PA signer is an end-entity X.509 v3 certificate (digitalSignature key usage, an email-protection or
document-signing extended key usage, an authority key identifier) issued by a CA, with its private key.
The user passes theirs (`--sign-cert`/`--sign-key`, or DFM_C2PA_CERT/DFM_C2PA_KEY). Without one, DFM
makes a test CA and a signer issued by it in the user config folder (`$DFM_CONFIG`, else
`$XDG_CONFIG_HOME/dfm`, else `~/.config/dfm`), so every output is signed anyway; verifiers then show the
signature as intact but the signer as unknown, because no trust list holds that CA.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from dfm.errors import InputError

CERT_ENV, KEY_ENV = "DFM_C2PA_CERT", "DFM_C2PA_KEY"
TEST_ORGANIZATION = "DFM local test certificate (not a trusted authority)"
TEST_FOLDER = "c2pa-test-signer"  # inside the config folder
CHAIN_FILE, KEY_FILE, CA_FILE = "signer-chain.pem", "signer-key.pem", "test-ca.pem"
EXTENDED_KEY_USAGES = ("1.3.6.1.5.5.7.3.4", "1.3.6.1.5.5.7.3.36")  # emailProtection, documentSigning


def default_config_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("DFM_CONFIG"):
        return Path(env["DFM_CONFIG"])
    return Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "dfm"


@dataclass(frozen=True)
class SigningIdentity:
    """A signer: PEM certificate chain (end entity first), PEM private key, the C2PA algorithm name.

    local_test: the chain is DFM's local test chain (no trust list holds its CA).
    """

    chain_pem: bytes
    key_pem: bytes
    alg: str  # "es256" | "es384" | "es512" | "ps256" | "ed25519"
    subject: str  # the end-entity certificate's common name (or whole subject)
    issuer: str
    serial: str  # decimal, as C2PA readers print it
    chain_path: Path
    key_path: Path
    local_test: bool = False


def resolve_identity(cert: str | os.PathLike | None = None, key: str | os.PathLike | None = None, *,
                     config_dir: str | os.PathLike | None = None,
                     env: Mapping[str, str] | None = None) -> tuple[SigningIdentity, bool]:
    """The signer for this job and whether it was just created.

    Order: the given cert + key; else DFM_C2PA_CERT + DFM_C2PA_KEY; else the local test chain in the
    config folder (made now if missing: then `created` is True). Raises InputError on half a pair, an
    unreadable file, an encrypted key or a key that does not match the certificate.
    """
    env = os.environ if env is None else env
    if cert is None and key is None:
        cert, key = env.get(CERT_ENV) or None, env.get(KEY_ENV) or None
        where = f"{CERT_ENV}/{KEY_ENV}"
    else:
        where = "--sign-cert/--sign-key"
    if (cert is None) != (key is None):
        raise InputError(f"signing needs both a certificate and its private key ({where}); got only one")
    if cert is not None and key is not None:
        return load_identity(Path(cert), Path(key)), False
    folder = Path(config_dir) if config_dir is not None else default_config_dir(env)
    return local_test_identity(folder)


def load_identity(cert: Path, key: Path, *, local_test: bool = False) -> SigningIdentity:
    """Read a PEM certificate chain and its PEM private key (unencrypted); check that they belong together."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    try:
        chain_pem, key_pem = cert.read_bytes(), key.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read the signing certificate or key: {e.strerror}: {e.filename}") from None
    try:
        chain = x509.load_pem_x509_certificates(chain_pem)
    except ValueError:
        raise InputError(f"{cert} is not a PEM certificate chain") from None
    try:
        private = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise InputError(f"{key} is an encrypted key; give DFM an unencrypted PEM key (keep it private)") from None
    except ValueError:
        raise InputError(f"{key} is not a PEM private key") from None
    leaf = chain[0]
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    if (private.public_key().public_bytes(serialization.Encoding.DER, pub)
            != leaf.public_key().public_bytes(serialization.Encoding.DER, pub)):
        raise InputError(f"the private key {key} does not belong to the first certificate in {cert}")
    if isinstance(private, ec.EllipticCurvePrivateKey):
        alg = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}.get(private.curve.name)
    elif isinstance(private, rsa.RSAPrivateKey):
        alg = "ps256"
    elif isinstance(private, ed25519.Ed25519PrivateKey):
        alg = "ed25519"
    else:
        alg = None
    if alg is None:
        raise InputError(f"{key}: C2PA signs with EC P-256/384/521, RSA (PSS) or Ed25519 keys only")
    return SigningIdentity(chain_pem=chain_pem, key_pem=key_pem, alg=alg, subject=_name(leaf.subject),
                           issuer=_name(leaf.issuer), serial=str(leaf.serial_number), chain_path=cert, key_path=key,
                           local_test=local_test)


def local_test_identity(config_dir: Path) -> tuple[SigningIdentity, bool]:
    """The local test chain in `config_dir` (made on first use; safe when several jobs start at once)."""
    folder = config_dir / TEST_FOLDER
    created = False
    if not (folder / KEY_FILE).exists():
        config_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=config_dir, prefix=f".{TEST_FOLDER}.tmp-"))
        try:
            write_test_chain(tmp)
            try:
                os.rename(tmp, folder)  # fails if another job made it meanwhile: then theirs is used
                created = True
            except OSError:
                if not (folder / KEY_FILE).exists():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return load_identity(folder / CHAIN_FILE, folder / KEY_FILE, local_test=True), created


def write_test_chain(folder: Path, *, years: int = 10) -> None:
    """Write a test CA and an ES256 signer it issued, with the extensions C2PA validators require:
    CA: basicConstraints CA, keyCertSign; signer: not a CA, digitalSignature (critical), emailProtection +
    documentSigning EKU, subject and authority key identifiers."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID, ObjectIdentifier

    now = dt.datetime.now(dt.timezone.utc)
    start, end = now - dt.timedelta(hours=1), now + dt.timedelta(days=365 * years)
    user = os.environ.get("USER") or os.environ.get("USERNAME") or "user"

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, TEST_ORGANIZATION)])

    def usage(**on: bool) -> x509.KeyUsage:
        flags = dict(digital_signature=False, content_commitment=False, key_encipherment=False,
                     data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                     encipher_only=False, decipher_only=False)
        return x509.KeyUsage(**{**flags, **on})

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = name(f"DFM local test CA ({user})")
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(usage(key_cert_sign=True, crl_sign=True), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(name(f"DFM local signer ({user})")).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ObjectIdentifier(o) for o in EXTENDED_KEY_USAGES]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (folder / CHAIN_FILE).write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    (folder / CA_FILE).write_bytes(ca.public_bytes(pem))
    key_path = folder / KEY_FILE
    key_path.touch(mode=0o600)
    key_path.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    # The CA's key is not kept: nothing else can ever be issued under this test CA.


def _name(name) -> str:
    from cryptography.x509.oid import NameOID

    cn = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cn[0].value) if cn else name.rfc4514_string()
