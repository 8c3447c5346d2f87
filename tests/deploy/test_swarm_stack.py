"""``deploy/swarm/stack.yml`` read as data: what ``docker stack deploy`` needs, and that it
fits the node. (``scripts/swarm-e2e`` deploys it for real; this runs without docker.)

Three miners, each with its own named volume, and a follower service whose replicas each
get a volume named after their slot; one overlay network; a healthcheck on ``/healthz``;
the admin token as an external swarm secret the node reads from its file; rolling updates
that stop a task before starting its replacement (two nodes must never share a volume);
peers found only through ``tasks.SERVICE`` names of the stack's own services; no port
published but node1's, and that only through ``publish.yml``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from node.config import Settings
from tests.deploy.conftest import DEPLOY, api_paths, dockerfile_uid, load_all, setting_name

SWARM = DEPLOY / "swarm"
STACK = load_all(SWARM / "stack.yml")[0]
PUBLISH = load_all(SWARM / "publish.yml")[0]
SERVICES: dict[str, dict[str, Any]] = STACK["services"]
MINERS = ("node1", "node2", "node3")
DEFAULTED = re.compile(r"\$\{(\w+):?-([^}]*)\}")


def expand(value: object) -> str:
    """A stack value with every ``${VAR:-default}`` replaced by its default."""
    return DEFAULTED.sub(lambda m: m.group(2), str(value))


def env_of(service: str) -> dict[str, str]:
    return {k: expand(v) for k, v in SERVICES[service]["environment"].items()}


def test_three_miners_and_a_scalable_follower_service() -> None:
    assert set(SERVICES) == {*MINERS, "follower"}
    for name in MINERS:
        assert SERVICES[name]["deploy"]["replicas"] == 1
        assert Settings(mine=env_of(name)["AILEDGER_MINE"]).mine is True
    assert Settings(mine=env_of("follower")["AILEDGER_MINE"]).mine is False
    assert int(expand(SERVICES["follower"]["deploy"]["replicas"])) >= 1


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_variable_is_a_valid_node_setting(service: str) -> None:
    env = env_of(service)
    unknown = [k for k in env if setting_name(k) is None]
    assert not unknown, f"{service}: not settings of ailedger node: {unknown}"
    values: dict[str, Any] = {setting_name(k): v for k, v in env.items()}
    values.pop("admin_token_file")  # a file in the task, checked below
    Settings(**values)


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_peers_are_found_by_the_dns_names_of_the_stacks_services(service: str) -> None:
    env = env_of(service)
    settings = Settings(peer_dns=env["AILEDGER_PEER_DNS"], port=env["AILEDGER_PORT"])
    assert not settings.peers, "no per-replica peer list"
    hosts = {name.host for name in settings.dns_names}
    assert hosts == {f"tasks.{s}" for s in SERVICES}
    assert {name.port for name in settings.dns_names} == {settings.port}


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_the_healthcheck_asks_healthz_on_the_api_port(service: str) -> None:
    test = " ".join(SERVICES[service]["healthcheck"]["test"])
    port = Settings(port=env_of(service)["AILEDGER_PORT"]).port
    assert f"http://127.0.0.1:{port}/healthz" in test and "/healthz" in api_paths()


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_the_admin_token_is_a_secret_file_the_node_user_reads(service: str) -> None:
    (secret,) = SERVICES[service]["secrets"]
    assert STACK["secrets"][secret["source"]]["external"] is True
    assert env_of(service)["AILEDGER_ADMIN_TOKEN_FILE"] == f"/run/secrets/{secret['target']}"
    assert int(secret["uid"]) == dockerfile_uid() and secret["mode"] == 0o400
    assert "AILEDGER_ADMIN_TOKEN" not in env_of(service), "no token in the environment"


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_task_keeps_its_chain_in_a_volume_of_its_own(service: str) -> None:
    (mount,) = SERVICES[service]["volumes"]
    volume, _, target = mount.partition(":")
    assert target == env_of(service)["AILEDGER_DATA_DIR"]
    assert volume in STACK["volumes"]
    if service == "follower":  # one volume per replica: its name has the task's slot
        assert "{{.Task.Slot}}" in STACK["volumes"][volume]["name"]


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_rolling_updates_stop_a_task_before_its_replacement_starts(service: str) -> None:
    deploy = SERVICES[service]["deploy"]
    update = deploy["update_config"]
    assert update["parallelism"] == 1 and update["order"] == "stop-first"
    assert update["failure_action"] == "rollback"
    assert deploy["restart_policy"]["condition"] == "any"
    assert {"cpus", "memory"} <= set(deploy["resources"]["limits"])


def test_one_overlay_network_joins_every_service() -> None:
    (network,) = STACK["networks"]
    assert STACK["networks"][network]["driver"] == "overlay"
    assert all(s["networks"] == [network] for s in SERVICES.values())


def test_only_node1_is_published_and_only_by_publish_yml() -> None:
    assert not any("ports" in s for s in SERVICES.values())
    assert set(PUBLISH["services"]) == {"node1"}
    (port,) = PUBLISH["services"]["node1"]["ports"]
    assert port["target"] == Settings(port=env_of("node1")["AILEDGER_PORT"]).port
    assert port["mode"] == "ingress"


def test_a_node_announces_the_address_dns_lists_for_it() -> None:
    script = " ".join(SERVICES["node1"]["entrypoint"])
    assert "AILEDGER_LISTEN_URL" in script and "hostname -i" in script
    assert script.rstrip().endswith('exec ailedger node "$$@" ailedger')
