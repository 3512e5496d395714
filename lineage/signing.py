"""Signed checkpoints: Ed25519 keys and signatures over a verified ledger head.

    lineage keygen -o ~/.lineage-keys/auditor      # auditor (private) + auditor.pub
    lineage verify --record --sign ~/.lineage-keys/auditor

A checkpoint says "the whole history up to event N, whose hash is H, verified". A
signed one carries, in its own payload, an Ed25519 signature over exactly that claim
(``lineage checkpoint N H``), the public key and its fingerprint. The chain format does
not change: the signature is payload, committed to by the checkpoint event's digest.
Anyone holding the public key (or trusting its fingerprint) can check that the key's
holder vouched for that head; a report shows whose key it was and whether it differs
from the identity that recorded everything else, since a signature by the recorder
itself proves much less than one by an independent party.

`cryptography` is imported only when a key is made, used or checked.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from .errors import BadArgumentError, InvalidInputError

ALGORITHM = "ed25519"


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:  # pragma: no cover - a dependency of the package
        raise InvalidInputError("signing needs the `cryptography` package (pip install cryptography)") from None
    return ed25519


def fingerprint(public_raw: bytes) -> str:
    """``SHA256:`` and the hex SHA-256 of the raw 32-byte public key."""
    return "SHA256:" + hashlib.sha256(public_raw).hexdigest()


def short(fp: str | None) -> str:
    """A fingerprint as people compare it: the first 16 hex digits in groups of four."""
    if not fp:
        return "—"
    hexpart = fp.split(":", 1)[-1]
    return "SHA256:" + " ".join(hexpart[i:i + 4] for i in range(0, 16, 4))


def _raw_public(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def keygen(path: str | os.PathLike[str]) -> dict[str, str]:
    """Write a new Ed25519 key pair: the private key (PEM, mode 0600) at ``path`` and the
    public key at ``path.pub``. Returns ``{private, public, fingerprint}``.

    Raises InvalidInputError when either file exists (a key is never overwritten) or
    cannot be written.
    """
    from cryptography.hazmat.primitives import serialization

    ed25519 = _crypto()
    priv_path = Path(path).expanduser()
    pub_path = priv_path.with_name(priv_path.name + ".pub")
    for p in (priv_path, pub_path):
        if p.exists():
            raise InvalidInputError(f"{p} already exists; choose another path (a key is never overwritten)")
    key = ed25519.Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        priv_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(priv_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(private_pem)
        pub_path.write_bytes(public_pem)
    except OSError as exc:
        raise InvalidInputError(f"cannot write the key to {priv_path}: {exc.strerror or exc}") from None
    return {"private": str(priv_path), "public": str(pub_path), "fingerprint": fingerprint(_raw_public(key.public_key()))}


def load_private(path: str | os.PathLike[str]) -> Any:
    """The Ed25519 private key in a PEM file; raises InvalidInputError when the file is
    missing, unreadable, encrypted or holds another kind of key."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    ed25519 = _crypto()
    p = Path(path).expanduser()
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read the key file {p}: {exc.strerror or exc}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:  # (the last: a PEM key of a kind it cannot read)
        raise InvalidInputError(f"{p} is not an unencrypted PEM private key (make one with `lineage keygen`): "
                                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise InvalidInputError(f"{p} holds a {type(key).__name__}; signed checkpoints use Ed25519 keys (`lineage keygen`)")
    return key


def trusted_fingerprint(key: str | os.PathLike[str]) -> str:
    """The fingerprint of the key an auditor trusts, given as its public key file (PEM, as
    `keygen` writes ``KEYFILE.pub``) or as the fingerprint itself (``SHA256:`` and 64 hex
    digits, as `keygen` prints it).

    Raises, in one line, BadArgumentError (bad usage, exit 2) for a key of the wrong
    form: an empty one, a malformed fingerprint, a file that holds a private key (give
    its ``.pub``), a key of another kind, or anything else; and InvalidInputError (exit
    1, as for any file) for a file that is missing, unreadable or a directory.
    """
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    ed25519 = _crypto()
    text = os.fspath(key)
    if not text:  # a failed `KEY=$(…)` in a script: never read as the working directory
        raise BadArgumentError("--key takes a public key file (KEYFILE.pub) or a fingerprint (SHA256: and 64 hex "
                               "digits), not an empty string")
    if isinstance(text, str) and text.upper().startswith("SHA256:") and not Path(text).expanduser().exists():
        hexpart = text.split(":", 1)[1].strip().lower()
        if len(hexpart) != 64 or not all(c in "0123456789abcdef" for c in hexpart):
            raise BadArgumentError(f"{text!r} is not a key fingerprint: `lineage keygen` prints SHA256: and 64 hex digits")
        return "SHA256:" + hexpart
    p = Path(key).expanduser()
    try:
        data = p.read_bytes()
    except OSError as exc:  # (a file that is not there is exit 1, like any missing file: DESIGN.md §5)
        raise InvalidInputError(f"cannot read the public key file {p}: {exc.strerror or exc}") from None
    # the file is there but is not a trusted key's form: bad usage of --key, as a malformed fingerprint is
    if b"PRIVATE KEY" in data:
        raise BadArgumentError(f"{p} is a private key; check signatures with its public key ({p.name}.pub), "
                               "which is all an auditor needs")
    try:
        public = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise BadArgumentError(f"{p} is not a PEM public key (the KEYFILE.pub `lineage keygen` writes) "
                               "nor a fingerprint (SHA256: and 64 hex digits)") from None
    except UnsupportedAlgorithm:  # a well-formed PEM key of a type cryptography does not know (its OID)
        raise BadArgumentError(f"{p} holds a public key of a kind lineage cannot read; signed checkpoints use "
                               "Ed25519 keys (`lineage keygen`)") from None
    if not isinstance(public, ed25519.Ed25519PublicKey):
        raise BadArgumentError(f"{p} holds a {type(public).__name__}; signed checkpoints use Ed25519 keys (`lineage keygen`)")
    return fingerprint(_raw_public(public))


def checkpoint_message(verified_through: int, head: str) -> bytes:
    """What a checkpoint signature covers: the event count and head hash it vouches for."""
    return f"lineage checkpoint {int(verified_through)} {head}".encode()


def sign(keyfile: str | os.PathLike[str], message: bytes) -> dict[str, str]:
    """``{algorithm, public_key, fingerprint, signature}`` (hex) of ``message`` signed
    with the key in ``keyfile``. Raises InvalidInputError for a bad key file."""
    key = load_private(keyfile)
    raw = _raw_public(key.public_key())
    return {"algorithm": ALGORITHM, "public_key": raw.hex(), "fingerprint": fingerprint(raw),
            "signature": key.sign(message).hex()}


def check(signature: Any, message: bytes) -> tuple[bool, str]:
    """``(valid, why not)`` for a signature record as `sign` makes it."""
    from cryptography.exceptions import InvalidSignature

    ed25519 = _crypto()
    if not isinstance(signature, dict) or signature.get("algorithm") != ALGORITHM:
        return False, "the signature record is not an Ed25519 signature"
    try:
        raw = bytes.fromhex(str(signature.get("public_key")))
        sig = bytes.fromhex(str(signature.get("signature")))
        public = ed25519.Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        return False, "the signature record's key or signature is not valid hex of the right length"
    if fingerprint(raw) != signature.get("fingerprint"):
        return False, "the recorded fingerprint does not belong to the recorded public key"
    try:
        public.verify(sig, message)
    except InvalidSignature:
        return False, "the signature does not match the head it claims to vouch for"
    return True, ""
