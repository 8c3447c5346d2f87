"""Encrypted storage on the command line (design §12): ``fetch``, and the ``--store``
step of ``register`` and ``record inference``.

``stored(node, path, recipients)`` encrypts an artifact to its age recipients, uploads
the ciphertext to the node with a progress bar, and yields what the record needs: the
plaintext's ``Artifact`` and the ``metadata.storage`` object. ``fetch`` gets an artifact
back from any node that holds it and checks every digest on the way
(``node.artifacts.vault``). This module does not import ``node.cli``: ``node.cli`` and
``node.cli_records`` use it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from node.artifacts import (
    StorageError,
    WrongIdentity,
    fetch_artifact,
    sealed,
    upload,
)
from node.client import ApiError, NodeUnavailable
from node.manifest import Artifact, ArtifactError, artifact_size
from node.records import with_layout

__all__ = [
    "EncryptToOption",
    "StoreOption",
    "check_store_options",
    "fetch",
    "stored",
    "with_storage",
]

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

EncryptToOption = Annotated[
    list[str] | None,
    typer.Option(
        "--encrypt-to",
        metavar="RECIPIENT",
        help="An age recipient (age1...) who may decrypt the stored artifact; repeatable.",
    ),
]
StoreOption = Annotated[
    bool,
    typer.Option(
        "--store", help="Encrypt the artifact (needs --encrypt-to) and store it on the node."
    ),
]


def check_store_options(encrypt_to: list[str] | None, store: bool) -> list[str]:
    """The recipients, when storing; a clear usage error for a half-given pair."""
    if store and not encrypt_to:
        _fail("--store needs at least one --encrypt-to RECIPIENT (see: ailedger keygen --age)", 2)
    if encrypt_to and not store:
        _fail("--encrypt-to is for --store: add --store to encrypt and store the artifact", 2)
    return list(encrypt_to or [])


@contextmanager
def bar(label: str, total: int | None) -> Iterator[Callable[[int], object]]:
    """A transient progress bar on stderr (none in logs and pipes)."""
    columns = (BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(label, *columns, console=err, transient=True, disable=not err.is_terminal) as p:
        task = p.add_task(label, total=total)
        yield lambda n: p.advance(task, n)


@contextmanager
def stored(
    node: str, path: Path, recipients: list[str], *, skip_symlinks: bool = False
) -> Iterator[tuple[Artifact, dict[str, Any]]]:
    """Encrypt ``path`` and upload its ciphertext to ``node``; the plaintext's artifact
    and the record's ``metadata.storage``."""
    total = artifact_size(path, skip_symlinks=skip_symlinks)
    with (
        bar("encrypting", total) as progress,
        sealed(path, recipients, progress, skip_symlinks=skip_symlinks) as seal,
    ):
        with bar("uploading", seal.storage["ciphertext_size"]) as sent:
            status = upload(node, seal.storage["ciphertext_digest"], seal.ciphertext, sent)
        err.print(
            f"{'stored' if status == 'stored' else 'already held'}: "
            f"{seal.storage['ciphertext_digest']} ({seal.storage['ciphertext_size']} bytes "
            f"of age ciphertext) on {node}",
            markup=False,
        )
        yield seal.artifact, seal.storage


def with_storage(
    metadata: Mapping[str, Any] | None, storage: Mapping[str, Any] | None, artifact: Artifact
) -> dict[str, Any] | None:
    """User metadata plus ``storage`` (and a stored directory's layout, which ``fetch``
    reads to unpack it)."""
    if storage is None:
        return dict(metadata) if metadata else None
    return with_layout({**(metadata or {}), "storage": dict(storage)}, artifact)


def fetch(
    txid: Annotated[str, typer.Argument(help="The record whose stored artifact to fetch.")],
    *,
    identity: Annotated[
        Path, typer.Option("--identity", help="Your age identity file (ailedger keygen --age).")
    ],
    out_path: Annotated[
        Path,
        typer.Option("--out", help="Where to put the artifact (a directory: its root)."),
    ],
    nodes: Annotated[
        list[str],
        typer.Option("--node", envvar="AILEDGER_NODE", help="A node to ask; repeat for more."),
    ],
) -> None:
    """Download a stored artifact, decrypt it, check its digests, and put it at --out."""
    columns = (BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    try:
        with Progress(
            "downloading", *columns, console=err, transient=True, disable=not err.is_terminal
        ) as shown:

            def attempt(size: int | None) -> Callable[[int], object]:
                task = shown.add_task("download", total=size)  # one bar per node tried
                return lambda n: shown.advance(task, n)

            result = fetch_artifact(txid, identity, out_path, nodes, warn=_warn, progress=attempt)
    except WrongIdentity as exc:
        _fail(str(exc), 1)
    except (ArtifactError, StorageError) as exc:
        _fail(str(exc), 1)
    except NodeUnavailable as exc:
        _fail(f"cannot reach the node: {exc.message}", 2)
    except ApiError as exc:
        _fail(f"{exc.code}: {exc.message}", 1)
    kind = "directory" if result.stored.is_directory else "file"
    err.print(
        f"fetched from {result.node}; ciphertext {result.stored.ciphertext_digest} and "
        f"plaintext {result.stored.digest} both match the record",
        markup=False,
    )
    out.print(f"{result.path} ({kind})", markup=False)


def _warn(message: str) -> None:
    err.print("[yellow]warning:[/] " + escape(message))


def _fail(message: str, code: int) -> Any:
    err.print("[bold red]error:[/] " + escape(message))
    raise typer.Exit(code)
