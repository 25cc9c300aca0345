"""Ed25519 signatures of deployment bundles, so a bundle edited after export is caught even when its manifest's
hashes were recomputed: the manifest lists every file's sha256, and the signature covers the manifest's bytes.

    new_key_pair(Path("team_key"))          # team_key (private, mode 0600) and team_key.pub
    sign_bundle(folder, Path("team_key"))   # writes manifest.json.sig beside manifest.json
    check_signature(folder, Path("team_key.pub"))

Keys are PEM files (PKCS#8 private, SubjectPublicKeyInfo public) through the `cryptography` package.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from core.atomic_files import write_text_atomically
from engine.bundle.files import MANIFEST_NAME, SIGNATURE_NAME, BundleError, BundleVerificationError

ALGORITHM = "ed25519"
MAX_KEY_BYTES = 16_384


def new_key_pair(private_path: Path) -> Path:
    """Writes a new private key to `private_path` (readable by its owner only) and its public key to
    `<private_path>.pub`; refuses to replace either. Returns the public key's path."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    public_path = private_path.with_name(private_path.name + ".pub")
    for path in (private_path, public_path):
        if path.exists():
            raise BundleError(f"{path} exists; a key is never replaced (choose another name)")
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(private)
    write_text_atomically(public_path, public.decode())
    return public_path


def check_private_key(private_key: Path):
    """The Ed25519 private key in `private_key`; BundleError (one line) for anything else."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = _load_key(private_key, private=True)
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleError(f"{private_key}: not an Ed25519 private key")
    return key


def sign_bundle(folder: Path, private_key: Path) -> None:
    """Signs the bundle's manifest.json with the private key in `private_key`."""
    key = check_private_key(private_key)
    public = key.public_key().public_bytes_raw()
    signature = key.sign((folder / MANIFEST_NAME).read_bytes())
    document = {"algorithm": ALGORITHM, "public_key": base64.b64encode(public).decode(),
                "signature": base64.b64encode(signature).decode()}
    (folder / SIGNATURE_NAME).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def check_signature(root: Path, public_key: Path) -> None:
    """Raises BundleVerificationError unless manifest.json carries a valid signature by `public_key`'s owner."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    key = _load_key(public_key, private=False)
    if not isinstance(key, Ed25519PublicKey):
        raise BundleVerificationError(f"{public_key}: not an Ed25519 public key")
    path = root / SIGNATURE_NAME
    if not path.is_file():
        raise BundleVerificationError(f"{root}: not signed (no {SIGNATURE_NAME}), so it cannot be checked against "
                                      f"{public_key.name}")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        signature = base64.b64decode(document["signature"], validate=True)
        algorithm = document["algorithm"]
    except (ValueError, KeyError, TypeError) as error:
        raise BundleVerificationError(f"{path}: not a readable signature ({error})") from None
    if algorithm != ALGORITHM:
        raise BundleVerificationError(f"{path}: signed with {algorithm!r}; only {ALGORITHM} is checked")
    try:
        key.verify(signature, (root / MANIFEST_NAME).read_bytes())
    except InvalidSignature:
        raise BundleVerificationError(f"{root}: the signature does not match: manifest.json was changed after "
                                      f"signing, or it was signed by another key than {public_key.name}'s") from None


def _load_key(path: Path, *, private: bool):
    from cryptography.hazmat.primitives import serialization

    try:
        data = Path(path).read_bytes()[:MAX_KEY_BYTES + 1]
    except OSError as error:
        raise BundleError(f"{path}: cannot read the key ({error.strerror or error})") from None
    if len(data) > MAX_KEY_BYTES:
        raise BundleError(f"{path}: too large for a key file")
    try:
        if private:
            return serialization.load_pem_private_key(data, password=None)
        return serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as error:  # not PEM, wrong kind, or a password-protected key
        kind = "private" if private else "public"
        raise BundleError(f"{path}: not a readable PEM {kind} key ({str(error).splitlines()[0]})") from None
