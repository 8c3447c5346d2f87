"""``ailedger register ...`` and ``ailedger record ...``: sign records and submit them.

Each command loads the Ed25519 key from ``--key`` (PEM, as ``ailedger keygen`` writes
it), signs with the node's network, submits, and prints the txid and its status. With
``--wait N`` it then waits up to N seconds for the first confirmation.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from consensus.keys import private_key_from_pem
from consensus.payloads import ROLES
from consensus.tx import is_txid
from node.cli_common import (
    DEFAULT_NODE,
    digest_of,
    err,
    fail,
    failures,
    hashing_progress,
    out,
    report_skipped,
)
from node.client import Client
from node.manifest import digest_artifact, is_digest

__all__ = ["record_app", "register_app"]

register_app = typer.Typer(help="Hash an artifact and register it.", no_args_is_help=True)
record_app = typer.Typer(
    help="Record an inference, an attestation or a revocation.", no_args_is_help=True
)

KeyOption = Annotated[
    Path, typer.Option("--key", envvar="AILEDGER_KEY", help="Your private key (PEM).")
]
NodeOption = Annotated[
    str, typer.Option("--node", envvar="AILEDGER_NODE", help="The node's API base URL.")
]
MetadataOption = Annotated[
    str | None, typer.Option("--metadata", help="Free-form metadata, a JSON object.")
]
WaitOption = Annotated[
    float, typer.Option("--wait", min=0, help="Seconds to wait for a confirmation (0: none).")
]


def load_key(path: Path) -> Ed25519PrivateKey:
    """The signing key in ``path``; a clear error if it is missing or not Ed25519 PEM."""
    try:
        data = path.read_bytes()
        mode = path.stat().st_mode
    except OSError as exc:
        fail(f"cannot read key {path}: {exc.strerror or exc}", 2)
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        err.print(f"warning: {path} is readable by others; chmod 600 it", markup=False)
    try:
        return private_key_from_pem(data)
    except ValueError as exc:
        fail(f"cannot load key {path}: {exc}", 2)


def json_object(text: str | None, option: str) -> dict[str, Any] | None:
    """Parse a JSON object given on the command line."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        fail(f"{option}: not valid JSON: {exc}", 2)
    if not isinstance(value, dict):
        fail(f"{option}: must be a JSON object", 2)
    return value


def key_values(items: list[str] | None, option: str) -> dict[str, Any] | None:
    """``k=v`` pairs; a value that reads as JSON (``0.9``, ``true``) keeps its type."""
    if not items:
        return None
    result: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            fail(f"{option}: expected KEY=VALUE, got {item!r}", 2)
        try:
            result[name] = json.loads(raw)
        except ValueError:
            result[name] = raw
    return result


def refs(items: list[str] | None, option: str) -> list[str]:
    for item in items or []:
        if not is_txid(item):
            fail(f"{option}: {item!r} is not a txid (64 lowercase hex characters)", 2)
    return list(items or [])


def model_inputs(items: list[str] | None) -> list[tuple[str, str]]:
    """``TXID:ROLE`` pairs (role defaults to ``training_data``)."""
    found = []
    for item in items or []:
        ref, _, role = item.partition(":")
        role = role or "training_data"
        if not is_txid(ref) or role not in ROLES:
            fail(f"--input: expected TXID:ROLE with ROLE one of {', '.join(ROLES)}", 2)
        found.append((ref, role))
    return found


def submitted(client: Client, txid: str, wait: float) -> None:
    """Print the txid and its status, after waiting for a confirmation if asked."""
    state = "pending"
    if wait > 0:
        tx = client.wait_for_confirmation(txid, timeout=wait)
        state = f"confirmed in block {tx.get('block_hash')} at height {tx.get('height')}"
    out.print(txid, markup=False)
    err.print(f"status: {state}", markup=False)


# ---------------------------------------------------------------------- register


@register_app.command("dataset")
def register_dataset(
    path: Annotated[Path, typer.Argument(help="A file or a directory.")],
    *,
    name: Annotated[str, typer.Option(help="A human name for the dataset.")],
    key: KeyOption,
    node: NodeOption = DEFAULT_NODE,
    uri: Annotated[str | None, typer.Option(help="Where to get it.")] = None,
    license_: Annotated[str | None, typer.Option("--license", help="Its license.")] = None,
    derived_from: Annotated[
        list[str] | None, typer.Option(help="A dataset txid it derives from; repeatable.")
    ] = None,
    metadata: MetadataOption = None,
    skip_symlinks: Annotated[bool, typer.Option(help="Leave links out of a directory.")] = False,
    wait: WaitOption = 0,
) -> None:
    """Register a dataset: its digest, size and where it came from."""
    signing_key = load_key(key)
    parents, extra = refs(derived_from, "--derived-from"), json_object(metadata, "--metadata")
    with failures(), Client(node) as client:
        with hashing_progress(path, skip_symlinks) as progress:
            artifact = digest_artifact(
                path, progress, skip_symlinks=skip_symlinks, on_skip=report_skipped
            )
        txid = client.register_dataset(
            artifact,
            key=signing_key,
            name=name,
            uri=uri,
            license=license_,
            derived_from=parents,
            metadata=extra,
        )
        submitted(client, txid, wait)


@register_app.command("model")
def register_model(
    path: Annotated[Path, typer.Argument(help="The model: a file or a directory.")],
    *,
    name: Annotated[str, typer.Option(help="A human name for the model.")],
    key: KeyOption,
    node: NodeOption = DEFAULT_NODE,
    inputs: Annotated[
        list[str] | None,
        typer.Option("--input", help="TXID:ROLE of a dataset or model it used; repeatable."),
    ] = None,
    version: Annotated[str | None, typer.Option()] = None,
    framework: Annotated[str | None, typer.Option()] = None,
    metric: Annotated[list[str] | None, typer.Option(help="KEY=VALUE; repeatable.")] = None,
    param: Annotated[
        list[str] | None, typer.Option(help="A hyperparameter KEY=VALUE; repeatable.")
    ] = None,
    code_digest: Annotated[
        str | None, typer.Option(help="The training code: a sha256: digest or a path.")
    ] = None,
    metadata: MetadataOption = None,
    skip_symlinks: Annotated[bool, typer.Option(help="Leave links out of a directory.")] = False,
    wait: WaitOption = 0,
) -> None:
    """Register a model: its digest, what it was trained on, and how."""
    signing_key = load_key(key)
    used, extra = model_inputs(inputs), json_object(metadata, "--metadata")
    metrics, params = key_values(metric, "--metric"), key_values(param, "--param")
    with failures(), Client(node) as client:
        code = None if code_digest is None else digest_of(code_digest, skip_symlinks)
        with hashing_progress(path, skip_symlinks) as progress:
            artifact = digest_artifact(
                path, progress, skip_symlinks=skip_symlinks, on_skip=report_skipped
            )
        txid = client.register_model(
            artifact,
            key=signing_key,
            name=name,
            inputs=used,
            version=version,
            framework=framework,
            hyperparameters=params,
            metrics=metrics,
            code_digest=code,
            metadata=extra,
        )
        submitted(client, txid, wait)


# ---------------------------------------------------------------------- record


@record_app.command("inference")
def record_inference(
    *,
    model: Annotated[str, typer.Option(help="The model's txid.")],
    key: KeyOption,
    node: NodeOption = DEFAULT_NODE,
    input_digest: Annotated[str | None, typer.Option(help="The input's sha256: digest.")] = None,
    input_path: Annotated[Path | None, typer.Option("--input", help="Or the input file.")] = None,
    output_digest: Annotated[str | None, typer.Option(help="The output's digest.")] = None,
    output_path: Annotated[
        Path | None, typer.Option("--output", help="Or the output file.")
    ] = None,
    metadata: MetadataOption = None,
    wait: WaitOption = 0,
) -> None:
    """Record that MODEL turned an input into an output (a prediction)."""
    signing_key = load_key(key)
    refs([model], "--model")
    extra = json_object(metadata, "--metadata")
    with failures(), Client(node) as client:
        given_in = _one_digest(input_digest, input_path, "input")
        given_out = _one_digest(output_digest, output_path, "output")
        txid = client.record_inference(model, given_in, given_out, key=signing_key, metadata=extra)
        submitted(client, txid, wait)


def _one_digest(digest: str | None, path: Path | None, what: str) -> str:
    if (digest is None) == (path is None):
        fail(f"give exactly one of --{what}-digest and --{what}", 2)
    if digest is not None:
        if not is_digest(digest):
            fail(f"--{what}-digest: must be sha256: and 64 lowercase hex characters", 2)
        return digest
    assert path is not None
    return digest_of(str(path), skip_symlinks=False)


@record_app.command("attestation")
def record_attestation(
    *,
    subject: Annotated[str, typer.Option(help="The txid of the record attested.")],
    type_: Annotated[str, typer.Option("--type", help="What kind: evaluation, audit, ...")],
    result: Annotated[str, typer.Option(help="The finding, a JSON object.")],
    key: KeyOption,
    node: NodeOption = DEFAULT_NODE,
    metadata: MetadataOption = None,
    wait: WaitOption = 0,
) -> None:
    """Attest something about a record: an evaluation, an audit, a review."""
    signing_key = load_key(key)
    refs([subject], "--subject")
    finding = json_object(result, "--result") or {}
    extra = json_object(metadata, "--metadata")
    with failures(), Client(node) as client:
        txid = client.attest(subject, type_, finding, key=signing_key, metadata=extra)
        submitted(client, txid, wait)


@record_app.command("revocation")
def record_revocation(
    *,
    subject: Annotated[str, typer.Option(help="The txid of your record to revoke.")],
    key: KeyOption,
    node: NodeOption = DEFAULT_NODE,
    reason: Annotated[str | None, typer.Option(help="Why, for readers.")] = None,
    wait: WaitOption = 0,
) -> None:
    """Revoke one of your own records (for good: a revocation cannot be undone)."""
    signing_key = load_key(key)
    refs([subject], "--subject")
    with failures(), Client(node) as client:
        txid = client.revoke(subject, key=signing_key, reason=reason)
        submitted(client, txid, wait)
