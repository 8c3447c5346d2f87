"""``ailedger register ...`` and ``ailedger record ...``: sign records and submit them.

Each command loads the Ed25519 key from ``--key`` (PEM, as ``ailedger keygen`` writes
it), signs with the node's network, submits, and prints the txid and its status. With
``--wait N`` it then waits up to N seconds for the first confirmation.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from consensus.keys import private_key_from_pem
from consensus.payloads import ROLES
from consensus.tx import is_txid
from node.cli_common import (
    DEFAULT_NODE,
    NodeOption,
    digest_of,
    err,
    fail,
    failures,
    hashing_progress,
    out,
    report_skipped,
)
from node.cli_interop import BundleOption, BundlePublicKeyOption, bundle_options
from node.cli_storage import (
    EncryptToOption,
    StoreOption,
    check_store_options,
    stored,
    with_storage,
)
from node.client import Client
from node.interop.model_signing import MODEL_SIGNING_IGNORED, check_bundle
from node.manifest import Artifact, digest_artifact, is_digest

__all__ = ["load_key", "record_app", "register_app"]

register_app = typer.Typer(help="Hash an artifact and register it.", no_args_is_help=True)
record_app = typer.Typer(
    help="Record an inference, an attestation or a revocation.", no_args_is_help=True
)

KeyOption = Annotated[
    Path, typer.Option("--key", envvar="AILEDGER_KEY", help="Your private key (PEM).")
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
    """Print the txid at once (a wait that times out or is interrupted cannot lose it),
    then its status, after waiting for a confirmation if asked."""
    out.print(txid, markup=False)
    out.file.flush()
    state = "pending"
    if wait > 0:
        tx = client.wait_for_confirmation(txid, timeout=wait)
        state = f"confirmed in block {tx.get('block_hash')} at height {tx.get('height')}"
    err.print(f"status: {state}", markup=False)


@contextmanager
def hashed_or_stored(
    node: str, path: Path, skip_symlinks: bool, recipients: list[str]
) -> Iterator[tuple[Artifact, dict[str, Any] | None]]:
    """The artifact hashed; with ``recipients``, also encrypted and stored on the node
    (then with its ``metadata.storage``)."""
    if recipients:
        with stored(node, path, recipients, skip_symlinks=skip_symlinks) as (artifact, storage):
            yield artifact, storage
        return
    with hashing_progress(path, skip_symlinks) as progress:
        artifact = digest_artifact(
            path, progress, skip_symlinks=skip_symlinks, on_skip=report_skipped
        )
    yield artifact, None


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
    encrypt_to: EncryptToOption = None,
    store: StoreOption = False,
) -> None:
    """Register a dataset: its digest, size and where it came from; with --store, also
    encrypted to --encrypt-to and stored on the node."""
    signing_key = load_key(key)
    recipients = check_store_options(encrypt_to, store)
    parents, extra = refs(derived_from, "--derived-from"), json_object(metadata, "--metadata")
    with failures(), Client(node) as client:
        with hashed_or_stored(node, path, skip_symlinks, recipients) as (artifact, storage):
            txid = client.register_dataset(
                artifact,
                key=signing_key,
                name=name,
                uri=uri,
                license=license_,
                derived_from=parents,
                metadata=with_storage(extra, storage, artifact),
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
    model_signing_bundle: BundleOption = None,
    model_signing_public_key: BundlePublicKeyOption = None,
    encrypt_to: EncryptToOption = None,
    store: StoreOption = False,
) -> None:
    """Register a model: its digest, what it was trained on, and how. With a
    model-signing bundle: verify it first, then anchor it with an attestation; with
    --store, also encrypted to --encrypt-to and stored on the node."""
    signing_key = load_key(key)
    recipients = check_store_options(encrypt_to, store)
    used, extra = model_inputs(inputs), json_object(metadata, "--metadata")
    metrics, params = key_values(metric, "--metric"), key_values(param, "--param")
    bundle = bundle_options(model_signing_bundle, model_signing_public_key)
    if bundle is not None and recipients:
        # The bundle's digest leaves out the top-level .git files; a stored tree keeps
        # them, so the fetched tree would not match the record.
        fail(
            "--store cannot be combined with --model-signing-bundle: register the signed "
            "model first, then store its directory under a record of its own",
            2,
        )
    with failures(), Client(node) as client:
        code = None if code_digest is None else digest_of(code_digest, skip_symlinks)
        checked = None
        hashed: AbstractContextManager[tuple[Artifact, dict[str, Any] | None]]
        if bundle is not None:
            with hashing_progress(path, False, exclude=MODEL_SIGNING_IGNORED) as progress:
                checked = check_bundle(path, *bundle, progress=progress)
            hashed, extra = nullcontext((checked.artifact, None)), checked.metadata(extra)
        else:
            hashed = hashed_or_stored(node, path, skip_symlinks, recipients)
        with hashed as (artifact, storage):
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
                metadata=with_storage(extra, storage, artifact),
            )
        submitted(client, txid, wait)
        if checked is not None:
            anchor = client.attest(txid, "model-signing/v1", checked.result(), key=signing_key)
            submitted(client, anchor, wait)


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
    encrypt_to: EncryptToOption = None,
    store: StoreOption = False,
) -> None:
    """Record that MODEL turned an input into an output (a prediction); with --store,
    the output file is also encrypted to --encrypt-to and stored on the node."""
    signing_key = load_key(key)
    refs([model], "--model")
    recipients = check_store_options(encrypt_to, store)
    if recipients and (output_path is None or output_digest is not None):
        fail("--store stores the --output file: give --output, not --output-digest", 2)
    extra = json_object(metadata, "--metadata")
    with failures(), Client(node) as client:
        given_in = _one_digest(input_digest, input_path, "input")
        storing = stored(node, output_path, recipients) if recipients and output_path else None
        with storing or nullcontext((None, None)) as (artifact, storage):
            if artifact is not None:
                given_out, extra = artifact.digest, with_storage(extra, storage, artifact)
            else:
                given_out = _one_digest(output_digest, output_path, "output")
            txid = client.record_inference(
                model, given_in, given_out, key=signing_key, metadata=extra
            )
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
