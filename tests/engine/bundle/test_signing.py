"""Signed bundles (issue 14): a bundle changed after export fails verification against the signer's public key
even when its manifest's hashes were recomputed; an unsigned bundle, another key, or a damaged key is one line."""

import hashlib
import json

import pytest

from engine.bundle.files import BundleError, BundleVerificationError
from engine.bundle.signing import new_key_pair
from engine.bundle.verify import verify_bundle
from studio.cli.main import main
from tests.conftest import linear_onnx


@pytest.fixture
def signed(tmp_path, capsys):
    """A bundle signed with a new key: (bundle folder, public key)."""
    assert main(["keygen", str(tmp_path / "team_key")]) == 0
    bundle = tmp_path / "bundle"
    model = linear_onnx(tmp_path / "m.onnx")
    assert main(["export", str(model), "-o", str(bundle), "--sign-key", str(tmp_path / "team_key")]) == 0
    capsys.readouterr()
    return bundle, tmp_path / "team_key.pub"


def _rehash(bundle, name: str, text: str) -> None:
    """Replace a file and recompute its hash in the manifest, as an attacker who read the format would."""
    (bundle / name).write_text(text)
    manifest = json.loads((bundle / "manifest.json").read_text())
    entry = next(e for e in manifest["files"] if e["path"] == name)
    entry.update(sha256=hashlib.sha256(text.encode()).hexdigest(), size_bytes=len(text.encode()))
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def test_a_signed_bundle_verifies_with_its_public_key(signed, capsys):
    bundle, public = signed
    assert main(["verify-bundle", str(bundle), "--public-key", str(public)]) == 0
    assert "signed by the key of" in capsys.readouterr().out
    assert (public.parent / "team_key").stat().st_mode & 0o077 == 0  # the private key is the owner's only


def test_a_tampered_and_rehashed_bundle_fails_when_signed_but_passes_the_hash_check_alone(signed):
    # setup
    bundle, public = signed
    _rehash(bundle, "predict.py", "print('owned')\n")

    # execute / assert: the hashes agree with the rewritten manifest; only the signature can tell
    assert verify_bundle(bundle).files_checked > 0
    with pytest.raises(BundleVerificationError, match="the signature does not match: manifest.json was changed"):
        verify_bundle(bundle, public_key=public)


def test_another_key_an_unsigned_bundle_and_a_bad_key_are_one_line(signed, tmp_path, capsys):
    bundle, _ = signed
    other = new_key_pair(tmp_path / "other_key")
    with pytest.raises(BundleVerificationError, match="signed by another key"):
        verify_bundle(bundle, public_key=other)
    (bundle / "manifest.json.sig").unlink()
    with pytest.raises(BundleVerificationError, match="not signed"):
        verify_bundle(bundle, public_key=other)
    (tmp_path / "junk.pem").write_text("not a key")
    with pytest.raises(BundleError, match="not a readable PEM public key"):
        verify_bundle(bundle, public_key=tmp_path / "junk.pem")
    assert main(["keygen", str(tmp_path / "other_key")]) == 2  # never replaces a key
    assert "exists; a key is never replaced" in capsys.readouterr().err


def test_a_bad_signing_key_fails_before_any_work(tmp_path, capsys):
    model = linear_onnx(tmp_path / "m.onnx")
    (tmp_path / "public_only.pub").write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    code = main(["export", str(model), "-o", str(tmp_path / "bundle"), "--sign-key", str(tmp_path / "public_only.pub")])
    assert code == 2 and "not a readable PEM private key" in capsys.readouterr().err
    assert not (tmp_path / "bundle").exists()
