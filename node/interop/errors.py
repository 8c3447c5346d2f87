"""The one error the interop modules raise: a stable kebab-case ``code`` and a message.

unsupported-bundle   sharded, not sha256, another predicate or ignore list (refused
                     before any verification)
bad-bundle           not a model-signing bundle: unreadable, malformed
bad-public-key       the public key file is missing or not an EC public key in PEM
bundle-mismatch      the directory is not what the bundle signs (names the files)
bad-signature        model-signing's own verification refused the bundle
not-a-directory      a bundle goes with a model directory
missing-extra        the optional dependency ``ailedger[model-signing]`` is absent
not-anchored         no proven attestation of the bundle by the model's signer
not-exportable       the record or its lineage cannot be exported as provenance
artifact-mismatch    ``--artifact`` is not the record's artifact
"""

from __future__ import annotations

__all__ = ["InteropError"]

_FALSE = frozenset({"bundle-mismatch", "bad-signature", "not-anchored", "artifact-mismatch"})


class InteropError(Exception):
    """A bundle, key, directory or record this module refuses; ``code`` says which."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")

    @property
    def exit_code(self) -> int:
        """The command line's: 1 when something checked is false, 2 for bad input."""
        return 1 if self.code in _FALSE else 2
