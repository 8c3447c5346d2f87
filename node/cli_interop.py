"""The model-signing options that ``register model`` and ``verify`` share (design §11).

Kept apart from ``node.cli`` so that every command module can import them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["BundleOption", "BundlePublicKeyOption", "bundle_options"]

BundleOption = Annotated[
    Path | None,
    typer.Option(help="An OpenSSF model-signing bundle of the directory (design §11)."),
]
BundlePublicKeyOption = Annotated[
    Path | None, typer.Option(help="The EC public key (PEM) the bundle is signed with.")
]


def bundle_options(bundle: Path | None, public_key: Path | None) -> tuple[Path, Path] | None:
    """The two model-signing options, given together or not at all."""
    if (bundle is None) != (public_key is None):
        raise typer.BadParameter(
            "give --model-signing-bundle and --model-signing-public-key together"
        )
    return None if bundle is None or public_key is None else (bundle, public_key)
