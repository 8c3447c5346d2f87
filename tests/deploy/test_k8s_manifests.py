"""``deploy/k8s/``: the manifests Kubernetes takes, and that they fit the node they run.

No cluster runs here (no registry, no cluster images), so every manifest is validated
against the schemas of a pinned Kubernetes version (``kubernetes-validate``, strict: an
unknown field is an error), the kustomization must list every file, and the pods must
agree with the node: every ``AILEDGER_*`` variable is a setting ``ailedger node`` reads
and its value a valid one, the probes ask ``/healthz`` on the API's port, the peer DNS
name is the headless Service, the user is the Dockerfile's.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from node.config import Settings
from node.p2p.dns import DnsName
from tests.deploy.conftest import DEPLOY, api_paths, dockerfile_uid, load_all, setting_name

K8S = DEPLOY / "k8s"
KUBERNETES_VERSION = "1.31.0"
"""The Kubernetes release whose schemas the manifests are validated against."""

MANIFEST_FILES = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
KUSTOMIZATION = load_all(K8S / "kustomization.yaml")[0]


def manifests() -> list[dict[str, Any]]:
    return [doc for path in MANIFEST_FILES for doc in load_all(path)]


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in manifests() if doc["kind"] == kind]


def named(kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in of_kind(kind) if d["metadata"]["name"] == name]
    return doc


def node_containers() -> list[tuple[str, dict[str, Any]]]:
    return [
        (sts["metadata"]["name"], container)
        for sts in of_kind("StatefulSet")
        for container in sts["spec"]["template"]["spec"]["containers"]
    ]


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def generated_secret() -> dict[str, Any]:
    """The Secret kustomize's secretGenerator makes (with a made-up token)."""
    (generator,) = KUSTOMIZATION["secretGenerator"]
    keys = [entry.partition("=")[0] for entry in generator["files"]]
    token = base64.b64encode(b"0123456789abcdef").decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": generator["name"], "namespace": KUSTOMIZATION["namespace"]},
        "data": dict.fromkeys(keys, token),
    }


# --- schemas and the kustomization ---------------------------------------------------


@pytest.mark.parametrize("path", MANIFEST_FILES, ids=lambda p: p.name)
def test_every_manifest_validates_against_the_kubernetes_schemas(path: Path) -> None:
    docs = load_all(path)
    assert docs, f"{path.name} holds no manifest"
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_generated_secret_validates() -> None:
    kubernetes_validate.validate(generated_secret(), KUBERNETES_VERSION, strict=True)


def test_a_manifest_with_an_unknown_field_is_refused() -> None:
    doc = named("StatefulSet", "ailedger-miner")
    doc["spec"]["replica"] = 3
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_kustomization_lists_every_manifest_file() -> None:
    assert sorted(KUSTOMIZATION["resources"]) == sorted(p.name for p in MANIFEST_FILES)


def test_the_admin_token_file_is_git_ignored() -> None:
    (generator,) = KUSTOMIZATION["secretGenerator"]
    sources = [entry.rpartition("=")[2] for entry in generator["files"]]
    ignored = (K8S / ".gitignore").read_text().split()
    assert all(source in ignored for source in sources)


# --- the pods agree with the node --------------------------------------------------------


@pytest.mark.parametrize(("name", "container"), node_containers(), ids=lambda v: str(v)[:20])
def test_every_variable_is_a_valid_node_setting(name: str, container: dict[str, Any]) -> None:
    env = env_of(container)
    unknown = [k for k in env if k.startswith("AILEDGER_") and setting_name(k) is None]
    assert not unknown, f"{name}: not settings of ailedger node: {unknown}"
    values: dict[str, Any] = {setting_name(k): v for k, v in env.items() if setting_name(k)}
    values.pop("admin_token_file")  # a file in the pod, checked below
    values["listen_url"] = values["listen_url"].replace("$(POD_IP)", "10.0.0.7")
    settings = Settings(**values)
    assert settings.host == "0.0.0.0", "the API must listen on the pod's address"
    assert settings.public_url == "http://10.0.0.7:8000"


def test_miners_mine_and_followers_do_not() -> None:
    miner = named("StatefulSet", "ailedger-miner")["spec"]["template"]["spec"]["containers"][0]
    follower = named("StatefulSet", "ailedger-follower")["spec"]["template"]["spec"]
    assert Settings(mine=env_of(miner)["AILEDGER_MINE"]).mine is True
    assert Settings(mine=env_of(follower["containers"][0])["AILEDGER_MINE"]).mine is False


@pytest.mark.parametrize(("name", "container"), node_containers(), ids=lambda v: str(v)[:20])
def test_probes_ask_healthz_on_the_api_port(name: str, container: dict[str, Any]) -> None:
    port = Settings(port=env_of(container)["AILEDGER_PORT"]).port
    (http,) = [p for p in container["ports"] if p["name"] == "http"]
    assert http["containerPort"] == port
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        check = container[probe]["httpGet"]
        assert check["path"] == "/healthz" and check["path"] in api_paths(), f"{name} {probe}"
        assert check["port"] in ("http", port), f"{name} {probe}"


@pytest.mark.parametrize(("name", "container"), node_containers(), ids=lambda v: str(v)[:20])
def test_resources_are_requested_and_limited(name: str, container: dict[str, Any]) -> None:
    resources = container["resources"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources[kind]), f"{name} {kind}"


@pytest.mark.parametrize("sts", of_kind("StatefulSet"), ids=lambda s: s["metadata"]["name"])
def test_pods_run_as_the_images_unprivileged_user(sts: dict[str, Any]) -> None:
    pod = sts["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == dockerfile_uid()
    assert pod["securityContext"]["fsGroup"] == dockerfile_uid()
    for container in pod["containers"]:
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]


@pytest.mark.parametrize("sts", of_kind("StatefulSet"), ids=lambda s: s["metadata"]["name"])
def test_each_pod_keeps_its_chain_in_a_claim_of_its_own(sts: dict[str, Any]) -> None:
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert (
        mounts[claim["metadata"]["name"]] == Settings(**{"data_dir": "/data"}).data_dir.as_posix()
    )
    assert env_of(container)["AILEDGER_DATA_DIR"] == mounts[claim["metadata"]["name"]]


@pytest.mark.parametrize("sts", of_kind("StatefulSet"), ids=lambda s: s["metadata"]["name"])
def test_the_admin_token_file_is_the_mounted_secret(sts: dict[str, Any]) -> None:
    pod = sts["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    token_file = Path(env_of(container)["AILEDGER_ADMIN_TOKEN_FILE"])
    secret = generated_secret()
    (volume,) = [v for v in pod["volumes"] if "secret" in v]
    assert volume["secret"]["secretName"] == secret["metadata"]["name"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    assert Path(mount["mountPath"]) == token_file.parent and mount["readOnly"] is True
    assert token_file.name in secret["data"]


# --- services, discovery, disruption budgets -------------------------------------------


def pod_labels(sts: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = sts["spec"]["template"]["metadata"]["labels"]
    return labels


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_the_headless_service_lists_every_node_for_peer_dns() -> None:
    peers = named("Service", "ailedger-peers")
    assert peers["spec"]["clusterIP"] == "None"
    assert peers["spec"]["publishNotReadyAddresses"] is True  # a syncing node is found
    (port,) = peers["spec"]["ports"]
    for sts in of_kind("StatefulSet"):
        assert sts["spec"]["serviceName"] == "ailedger-peers"
        assert selects(peers["spec"]["selector"], pod_labels(sts))
        (container,) = sts["spec"]["template"]["spec"]["containers"]
        env = env_of(container)
        settings = Settings(peer_dns=env["AILEDGER_PEER_DNS"], port=env["AILEDGER_PORT"])
        assert settings.dns_names == [DnsName("ailedger-peers", port["port"])]


def test_the_api_service_reaches_every_nodes_api_port() -> None:
    api = named("Service", "ailedger-api")
    (port,) = api["spec"]["ports"]
    assert port["targetPort"] == "http"
    for sts in of_kind("StatefulSet"):
        assert selects(api["spec"]["selector"], pod_labels(sts))


def test_a_disruption_budget_covers_each_statefulset() -> None:
    budgets = of_kind("PodDisruptionBudget")
    for sts in of_kind("StatefulSet"):
        covering = [
            b for b in budgets if selects(b["spec"]["selector"]["matchLabels"], pod_labels(sts))
        ]
        assert len(covering) == 1, sts["metadata"]["name"]
    miners = named("PodDisruptionBudget", "ailedger-miner")
    assert miners["spec"]["maxUnavailable"] == 1  # two of three miners keep mining
