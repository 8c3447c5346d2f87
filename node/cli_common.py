"""What the ``ailedger`` commands share: the consoles, one-line failures and exit codes,
the default node, and hashing an artifact with a progress bar."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from consensus.errors import InvalidTx
from node.client import ApiError, NodeUnavailable
from node.manifest import ArtifactError, artifact_size, digest_path, is_digest

__all__ = [
    "DEFAULT_NODE",
    "digest_of",
    "err",
    "fail",
    "failures",
    "hashing_progress",
    "out",
    "report_skipped",
]

DEFAULT_NODE = "http://127.0.0.1:8000"
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one error line and exit with ``code``."""
    err.print("[bold red]error:[/] " + escape(message))
    raise typer.Exit(code)


@contextmanager
def failures() -> Iterator[None]:
    """Turn the errors a command can meet into one line and an exit code."""
    try:
        yield
    except NodeUnavailable as exc:
        fail(f"cannot reach the node: {exc.message}", 2)
    except ApiError as exc:
        fail(f"{exc.code}: {exc.message}", 1)
    except ArtifactError as exc:
        fail(str(exc), 2)
    except InvalidTx as exc:
        fail(f"{exc.code}: {exc.message}", 2)
    except TimeoutError as exc:
        fail(str(exc), 1)


def digest_of(path: str, skip_symlinks: bool) -> str:
    if is_digest(path) and not Path(path).exists():
        return path
    with hashing_progress(Path(path), skip_symlinks) as progress:
        return digest_path(path, progress, skip_symlinks=skip_symlinks, on_skip=report_skipped)


def report_skipped(name: str) -> None:
    err.print(f"skipped symbolic link {name}", markup=False)


@contextmanager
def hashing_progress(path: Path, skip_symlinks: bool) -> Iterator[Any]:
    """A rich progress bar on stderr; yields the ``progress(nbytes)`` callback."""
    from rich.progress import (  # noqa: PLC0415
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    total = artifact_size(path, skip_symlinks=skip_symlinks)  # a missing path fails here
    columns = (BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    quiet = not err.is_terminal  # no bar in logs and pipes
    with Progress("hashing", *columns, console=err, transient=True, disable=quiet) as bar:
        task = bar.add_task("hash", total=total)
        yield lambda n: bar.advance(task, n)
