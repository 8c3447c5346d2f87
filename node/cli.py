"""The ``ailedger`` command line (design §8): run a node, make keys, read the chain.

Writing records (``register``, ``record``) lives in ``node.cli_records``, the helpers
both share in ``node.cli_common``; ``verify``,
``lineage`` and ``status`` are here. Exit codes, for scripts:

    0  done (``verify``: every record verified)
    1  the node refused (an API error), or ``verify`` found nothing or something false
    2  bad usage or input (a missing file, a bad key), or no node could be reached

Every failure prints one line to stderr (``error: <code>: <message>``), never a traceback.
"""

from __future__ import annotations

import os
import tempfile
from collections import deque
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from consensus.keys import private_key_to_pem, public_key_hex
from node.cli_common import (
    DEFAULT_NODE,
    NodeOption,
    digest_of,
    err,
    fail,
    failures,
    hashing_progress,
    out,
)
from node.cli_interop import BundleOption, BundlePublicKeyOption, bundle_options
from node.cli_records import load_key, record_app, register_app
from node.cli_storage import fetch
from node.client import Client
from node.sim.command import simulate
from node.verifier import RecordReport, VerifyReport, verify_artifact

__all__ = ["app", "main"]

DEFAULT_KEY_FILE = "ailedger-key.pem"
DEFAULT_AGE_FILE = "ailedger-age.key"

app = typer.Typer(
    name="ailedger",
    help="A peer-to-peer proof-of-work provenance ledger for AI artifacts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _plain(text: str) -> str:
    """``text`` with rich markup escaped (a node's message is data, not markup)."""
    return escape(text)


# ---------------------------------------------------------------------- node


# The options of ``ailedger node``; each also reads its AILEDGER_* variable.
_NetworkOpt = Annotated[
    str | None, typer.Option(envvar="AILEDGER_NETWORK", help="devnet (default) or regtest.")
]
_HostOpt = Annotated[
    str | None, typer.Option(envvar="AILEDGER_HOST", help="Listen address [127.0.0.1].")
]
_PortOpt = Annotated[int | None, typer.Option(envvar="AILEDGER_PORT", help="Listen port [8000].")]
_DataDirOpt = Annotated[
    Path | None,
    typer.Option(envvar="AILEDGER_DATA_DIR", help="Where the chain lives [./ailedger-data]."),
]
_PeerOpt = Annotated[
    list[str] | None,
    typer.Option(
        envvar=["AILEDGER_PEER", "AILEDGER_PEERS"],
        metavar="URL",
        help="A seed peer's URL; repeatable (in the env: comma-separated).",
    ),
]
_PeerDnsOpt = Annotated[
    list[str] | None,
    typer.Option(
        envvar="AILEDGER_PEER_DNS",
        metavar="NAME[:PORT]",
        help="Dial every address NAME resolves to (swarm tasks.SERVICE, a Kubernetes "
        "headless Service), now and periodically; repeatable (in the env: comma-separated).",
    ),
]
_PeerDnsIntervalOpt = Annotated[
    float | None,
    typer.Option(envvar="AILEDGER_PEER_DNS_INTERVAL", help="Seconds between resolutions [30]."),
]
_AdminTokenFileOpt = Annotated[
    Path | None,
    typer.Option(
        envvar="AILEDGER_ADMIN_TOKEN_FILE",
        help="Read the admin token from this file (a Docker or Kubernetes secret).",
    ),
]
_ListenUrlOpt = Annotated[
    str | None,
    typer.Option(
        envvar="AILEDGER_LISTEN_URL", metavar="URL", help="The URL peers should use to reach us."
    ),
]
_MineOpt = Annotated[
    bool | None,
    typer.Option("--mine/--no-mine", envvar="AILEDGER_MINE", help="Mine in the background."),
]
_MinerWorkersOpt = Annotated[
    int | None,
    typer.Option(envvar="AILEDGER_MINER_WORKERS", help="Miner processes [1]."),
]
_MinerKeyOpt = Annotated[
    Path | None,
    typer.Option(envvar="AILEDGER_MINER_KEY", help="PEM key named in mined headers."),
]
_AdminTokenOpt = Annotated[
    str | None,
    typer.Option(envvar="AILEDGER_ADMIN_TOKEN", help="Enables /v1/admin with this bearer."),
]
_BlobQuotaOpt = Annotated[
    str | None,
    typer.Option(
        envvar="AILEDGER_BLOB_QUOTA",
        metavar="SIZE",
        help="Keep and replicate encrypted artifacts, up to SIZE (512MiB, 1GiB) [off].",
    ),
]
_LogLevelOpt = Annotated[
    str | None,
    typer.Option(envvar="AILEDGER_LOG_LEVEL", help="debug, info (default), warning, error."),
]


@app.command()
def node(
    *,
    network: _NetworkOpt = None,
    host: _HostOpt = None,
    port: _PortOpt = None,
    data_dir: _DataDirOpt = None,
    peer: _PeerOpt = None,
    peer_dns: _PeerDnsOpt = None,
    peer_dns_interval: _PeerDnsIntervalOpt = None,
    listen_url: _ListenUrlOpt = None,
    mine: _MineOpt = None,
    miner_workers: _MinerWorkersOpt = None,
    miner_key: _MinerKeyOpt = None,
    admin_token: _AdminTokenOpt = None,
    admin_token_file: _AdminTokenFileOpt = None,
    log_level: _LogLevelOpt = None,
    blob_quota: _BlobQuotaOpt = None,
) -> None:
    """Run a node: the REST API, peer sync and gossip, and (with --mine) a miner."""
    given: dict[str, Any] = {
        "network": network,
        "host": host,
        "port": port,
        "data_dir": data_dir,
        "peers": _split_peers(peer),
        "peer_dns": _split_peers(peer_dns),
        "peer_dns_interval": peer_dns_interval,
        "listen_url": listen_url,
        "mine": mine,
        "miner_workers": miner_workers,
        "miner_key": miner_key,
        "admin_token": admin_token,
        "admin_token_file": admin_token_file,
        "log_level": log_level.lower() if log_level else None,
        "blob_quota": blob_quota,
    }
    from pydantic import ValidationError  # noqa: PLC0415 - only this command needs it

    from node.config import Settings  # noqa: PLC0415 - keep `ailedger verify` light
    from node.server import run  # noqa: PLC0415

    try:
        settings = Settings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"]) or "settings"
        fail(f"bad setting {where}: {problem['msg']}", 2)
    run(settings)


def _split_peers(peers: list[str] | None) -> list[str] | None:
    """``--peer`` values; one may hold several URLs separated by commas or spaces (the
    form of ``AILEDGER_PEERS``)."""
    if not peers:
        return None
    return [url for item in peers for url in item.replace(",", " ").split()]


# ---------------------------------------------------------------------- keygen


@app.command()
def keygen(
    out_file: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help=f"Where to write the private key, mode 0600 [{DEFAULT_KEY_FILE}; "
            f"with --age: {DEFAULT_AGE_FILE}].",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    age: Annotated[
        bool,
        typer.Option("--age", help="Make an age X25519 identity (for encrypted storage) instead."),
    ] = False,
) -> None:
    """Make an Ed25519 signing key and print its public key (your signer id); with
    --age, an age identity file and print its recipient (age1...)."""
    if age:
        from node.artifacts import new_identity_file  # noqa: PLC0415

        data, public = new_identity_file()
        out_file = out_file or Path(DEFAULT_AGE_FILE)
    else:
        key = Ed25519PrivateKey.generate()
        data, public = private_key_to_pem(key), public_key_hex(key)
        out_file = out_file or Path(DEFAULT_KEY_FILE)
    try:
        write_private(out_file, data, force=force)
    except FileExistsError:
        fail(f"{out_file} exists; pass --force to overwrite it", 2)
    except OSError as exc:
        fail(f"cannot write {out_file}: {exc.strerror or exc}", 2)
    err.print(f"wrote private key to {out_file} (mode 0600); keep it secret")
    out.print(public)


def write_private(path: Path, data: bytes, *, force: bool) -> None:
    """Write ``data`` to a file that is mode 0600 from its first byte.

    The file is created with mode 0600 and ``O_EXCL`` (never a umask-dependent default,
    not even for an instant). With ``force`` it is written under a fresh temporary name
    and then replaces ``path`` atomically, so an old file's looser mode is not inherited.
    """
    if force:
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # 0600
        target = Path(temporary)
    else:
        fd, target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), path
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        if force:
            os.replace(target, path)
    except BaseException:
        target.unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------- verify


@app.command()
def verify(
    path: Annotated[str, typer.Argument(help="The file or directory (or a sha256: digest).")],
    *,
    nodes: Annotated[
        list[str],
        typer.Option("--node", envvar="AILEDGER_NODE", help="A node to ask; repeat for more."),
    ],
    confirmations: Annotated[int, typer.Option(min=1, help="Blocks required on top.")] = 1,
    skip_symlinks: Annotated[bool, typer.Option(help="Leave links out of a directory.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds per request.")] = 10.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    model_signing_bundle: BundleOption = None,
    model_signing_public_key: BundlePublicKeyOption = None,
) -> None:
    """Hash PATH and check its records against every node's proof-of-work headers."""
    bundle = bundle_options(model_signing_bundle, model_signing_public_key)
    if bundle is not None:
        verify_bundle(Path(path), bundle, nodes, confirmations, timeout, as_json)
    with failures():
        digest = digest_of(path, skip_symlinks)
        report = verify_artifact(digest, nodes, confirmations, timeout=timeout)
    if as_json:
        import json  # noqa: PLC0415

        out.print_json(json.dumps(report.to_json()))
    else:
        print_report(report)
    raise typer.Exit(0 if report.ok else 1)


def verify_bundle(
    path: Path,
    bundle: tuple[Path, Path],
    nodes: list[str],
    confirmations: int,
    timeout: float,
    as_json: bool,
) -> NoReturn:
    """``verify DIR --model-signing-bundle ...``: the bundle, then its anchor (§11)."""
    from node.interop.anchoring import verify_anchored  # noqa: PLC0415
    from node.interop.model_signing import MODEL_SIGNING_IGNORED, check_bundle  # noqa: PLC0415

    with failures():
        with hashing_progress(path, False, exclude=MODEL_SIGNING_IGNORED) as progress:
            checked = check_bundle(path, *bundle, progress=progress)
        answer = verify_anchored(checked, nodes, confirmations, timeout=timeout)
    if as_json:
        import json  # noqa: PLC0415

        out.print_json(json.dumps(answer.to_json(checked)))
    else:
        print_report(answer.report)
        out.print(f"model-signing bundle {checked.bundle.payload_digest}", markup=False)
        out.print(f"signed with key {checked.key_fingerprint}", markup=False)
        for anchor in answer.anchors:
            out.print(f"anchored by {anchor.txid} at height {anchor.height}", markup=False)
        for line in answer.reasons:
            err.print(f"[red]✗[/] {_plain(line)}")
        for line in answer.notes:
            err.print(f"note: {line}", markup=False)
        if answer.ok:
            out.print("[green]verified[/]: the bundle is anchored by the model's signer")
        elif answer.report.ok:  # otherwise the report already said so
            err.print("[bold red]not verified[/]")
    raise typer.Exit(0 if answer.ok else 1)


def print_report(report: VerifyReport) -> None:
    """The report for a person: the chain used, one small table per record, the verdict."""
    out.print(f"digest  {report.digest}", markup=False)
    if report.best_height is not None:
        out.print(
            f"chain   {report.network} at height {report.best_height} "
            f"(tip {report.best_hash}), most work of {len(report.nodes)} node(s)",
            markup=False,
        )
    for checked in report.nodes:
        if not checked.ok:
            err.print(f"node {checked.url} not used: {checked.error}", markup=False)
    for record in report.records:
        out.print()
        out.print(record_table(record))
    for line in report.failures():
        err.print(f"[red]✗[/] {_plain(line)}")
    if report.ok:
        out.print(f"[green]verified[/]: {len(report.records)} record(s)")
    else:
        err.print("[bold red]not verified[/]")


def record_table(r: RecordReport) -> Table:
    verdict = "[green]ok[/]" if r.ok else "[red]REVOKED[/]" if r.revoked else "[red]FAILED[/]"
    title = f"{verdict} {r.kind or 'record'} {_plain(repr(r.name)) if r.name else ''}"
    table = Table(box=None, show_header=False, title=title, title_justify="left", pad_edge=False)
    table.add_column(style="dim", no_wrap=True)
    table.add_column(overflow="fold")
    rows = [
        ("txid", r.txid),
        ("signer", r.signer),
        ("matches", ", ".join(r.fields) or None),
        ("block", None if r.height is None else f"height {r.height}, {r.block_hash}"),
        ("mined", _when(r.timestamp)),
        ("depth", None if r.confirmations is None else f"{r.confirmations} confirmation(s)"),
        ("work on top", None if r.work_on_top is None else f"{r.work_on_top:#x}"),
        ("revoked", r.revoked_by and f"by {r.revoked_by}: {r.revocation_reason or '-'}"),
        ("proof from", r.proof_from),
    ]
    for name, value in rows:
        if value:
            table.add_row(name, _plain(value))
    for note in r.notes:
        table.add_row("note", _plain(note))
    return table


def _when(timestamp_ms: int | None) -> str | None:
    if timestamp_ms is None:
        return None
    moment = datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


# ---------------------------------------------------------------------- lineage, status


@app.command()
def lineage(
    txid: str,
    node: NodeOption = DEFAULT_NODE,
    direction: Annotated[
        str, typer.Option(help="ancestors (what it came from) or descendants.")
    ] = "ancestors",
    depth: Annotated[int | None, typer.Option(min=1, help="Levels to follow.")] = None,
) -> None:
    """Show what a record derives from (or what derives from it) as a tree."""
    if direction not in ("ancestors", "descendants"):
        fail("--direction must be ancestors or descendants", 2)
    with failures(), Client(node) as client:
        graph = client.lineage(txid, direction, depth)
    out.print(lineage_tree(graph, direction))


def lineage_tree(graph: dict[str, Any], direction: str) -> Tree:
    """A rich Tree of the API's ``{root, nodes, edges}`` (edges point from a record to what
    it derives from); a record reached twice is expanded once, then named "(above)"."""
    views = {v.get("txid"): v for v in graph.get("nodes", []) if isinstance(v, dict)}
    links: dict[str, list[tuple[str, str]]] = {}
    for edge in graph.get("edges", []):
        child, parent, role = str(edge.get("from")), str(edge.get("to")), edge.get("role", "")
        start, end = (child, parent) if direction == "ancestors" else (parent, child)
        links.setdefault(start, []).append((end, str(role)))
    root = str(graph.get("root"))
    tree = Tree(_label(views.get(root), root))
    seen = {root}
    queue: deque[tuple[str, Tree]] = deque([(root, tree)])
    while queue:  # breadth first: a record shared by two branches opens at its nearest
        txid, branch = queue.popleft()
        for other, role in links.get(txid, []):
            label = f"[dim]{_plain(role)}[/] {_label(views.get(other), other)}"
            if other in seen:
                branch.add(label + " [dim](above)[/]")
                continue
            seen.add(other)
            queue.append((other, branch.add(label)))
    return tree


def _label(view: dict[str, Any] | None, txid: str) -> str:
    if view is None:
        return txid[:16]
    payload = view.get("payload") or {}
    name = payload.get("name") or payload.get("type") or ""
    revoked = " [red](revoked)[/]" if view.get("revoked") else ""
    shown = f" {_plain(str(name))}" if name else ""
    return f"[bold]{view.get('kind', '?')}[/]{shown} [dim]{txid[:16]}[/]{revoked}"


@app.command()
def status(node: NodeOption = DEFAULT_NODE) -> None:
    """Show a node's chain, mempool and peers."""
    with failures(), Client(node) as client:
        info = client.status()
    table = Table(show_header=False, title=node, title_justify="left")
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")  # hashes whole, so they can be copied
    for key, value in info.items():
        table.add_row(key, _plain(_status_value(key, value)))
    out.print(table)


def _status_value(key: str, value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    if key == "chain_work" and isinstance(value, str):
        with suppress(ValueError):
            return f"{int(value, 16):#x}"
    if key == "bits" and isinstance(value, int):
        return f"{value:#010x}"
    return str(value)


# ---------------------------------------------------------------------- export


@app.command()
def export(
    txid: Annotated[str, typer.Argument(help="The record to export with its lineage.")],
    *,
    format_: Annotated[
        str, typer.Option("--format", help="in-toto: a DSSE-signed SLSA provenance v1.")
    ],
    key: Annotated[
        Path, typer.Option("--key", envvar="AILEDGER_KEY", help="Your private key (PEM).")
    ],
    node: NodeOption = DEFAULT_NODE,
    artifact: Annotated[
        Path | None, typer.Option(help="The record's file or directory: one subject per file.")
    ] = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write here, not stdout.")] = None,
) -> None:
    """Export a record's provenance, every record proven against the node's headers."""
    import json  # noqa: PLC0415

    from node.interop.intoto import export_in_toto  # noqa: PLC0415

    if format_ != "in-toto":
        fail("--format: only in-toto is supported", 2)
    signing_key = load_key(key)
    with failures(), Client(node) as client:
        text = json.dumps(export_in_toto(client, txid, signing_key, artifact), indent=2) + "\n"
    if out_file is None:
        typer.echo(text, nl=False)
        return
    try:
        out_file.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {out_file}: {exc.strerror or exc}", 2)
    err.print(f"wrote {out_file}", markup=False)


app.command()(simulate)


def main() -> None:
    """The console script. Ctrl-C ends it quietly; an unexpected error is one line too,
    unless ``AILEDGER_DEBUG`` is set (then the traceback, for a bug report)."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        raise SystemExit(130) from None
    except Exception as exc:
        if os.environ.get("AILEDGER_DEBUG"):
            raise
        err.print(
            f"[bold red]error:[/] unexpected {type(exc).__name__}: {escape(str(exc))} "
            "(set AILEDGER_DEBUG=1 for a traceback)"
        )
        raise SystemExit(1) from None


app.add_typer(register_app, name="register")
app.add_typer(record_app, name="record")
app.command("fetch")(fetch)
