"""age keys and streaming encryption (``pyrage``), as design §12 uses them.

An identity file is what ``age-keygen`` writes: comment lines, then one
``AGE-SECRET-KEY-1...`` line; its recipient (``age1...``) is what others encrypt to.
Encryption and decryption always stream file to file (pyrage's ``encrypt_file`` and
``decrypt_file``): the in-memory ``encrypt(bytes)`` needed 3 GiB for 1 GiB of data.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pyrage
from pyrage import x25519

__all__ = [
    "StorageError",
    "WrongIdentity",
    "decrypt_file",
    "encrypt_file",
    "load_identities",
    "new_identity_file",
    "parse_recipient",
    "recipient_of",
]


class StorageError(Exception):
    """Storing or fetching an artifact failed; the message says why, for a person."""


class WrongIdentity(StorageError):
    """The identity given cannot open this ciphertext."""


def new_identity_file() -> tuple[bytes, str]:
    """A fresh X25519 identity as an age identity file, and its recipient."""
    identity = x25519.Identity.generate()
    recipient = str(identity.to_public())
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = f"# created: {created}\n# public key: {recipient}\n{identity}\n"
    return text.encode(), recipient


def load_identities(path: Path) -> list[x25519.Identity]:
    """The identities in an age identity file (``#`` lines are comments)."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise StorageError(f"cannot read identity {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise StorageError(f"{path} is not an age identity file") from exc
    keys = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    if not keys:
        raise StorageError(f"{path} holds no AGE-SECRET-KEY-1... line")
    try:
        return [x25519.Identity.from_str(key) for key in keys]
    except pyrage.IdentityError as exc:
        raise StorageError(f"{path}: not an age X25519 identity: {exc}") from exc


def recipient_of(identity: x25519.Identity) -> str:
    return str(identity.to_public())


def parse_recipient(text: str) -> x25519.Recipient:
    try:
        return x25519.Recipient.from_str(text.strip())
    except pyrage.RecipientError as exc:
        raise StorageError(f"{text!r} is not an age X25519 recipient (age1...): {exc}") from exc


def encrypt_file(source: Path, target: Path, recipients: Sequence[x25519.Recipient]) -> None:
    """Encrypt ``source`` to ``target`` (binary age), streaming."""
    try:
        pyrage.encrypt_file(os.fspath(source), os.fspath(target), list(recipients))
    except (pyrage.EncryptError, OSError) as exc:
        raise StorageError(f"cannot encrypt {source}: {exc}") from exc


def decrypt_file(source: Path, target: Path, identities: Sequence[x25519.Identity]) -> None:
    """Decrypt ``source`` to ``target``, streaming; ``WrongIdentity`` when none of
    ``identities`` is a recipient, ``StorageError`` when the ciphertext is damaged."""
    try:
        pyrage.decrypt_file(os.fspath(source), os.fspath(target), list(identities))
    except pyrage.DecryptError as exc:
        if "no matching keys" in str(exc).lower() or "no identity matched" in str(exc).lower():
            raise WrongIdentity(
                "cannot decrypt: the identity given is not one of the artifact's recipients"
            ) from exc
        raise StorageError(f"cannot decrypt: {exc}") from exc
    except OSError as exc:
        raise StorageError(f"cannot decrypt: {exc}") from exc
