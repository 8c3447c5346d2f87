"""Drive a ``docker stack`` of ailedger nodes (``deploy/swarm/stack.yml``) from the host.

The swarm counterpart of ``tests/e2e/cluster.py``, whose ``ServiceNode`` it reuses: a
``Stack`` is a ``Cluster`` whose containers are the tasks of the stack's services, found
by the labels the swarm puts on them (service name, slot), never by container name. No
port is published: every API call goes through ``docker exec`` and the image's Python,
with the admin token read from the swarm secret's file. A task the swarm replaced (killed,
updated) is another container: ``node()`` always looks the current one up.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping

from tests.e2e.cluster import ROOT, Cluster, NodeFailure, ServiceNode, Unreachable, run, wait_until

__all__ = ["STACK_FILE", "Stack", "confirmed_on", "container_state"]

STACK_FILE = ROOT / "deploy" / "swarm" / "stack.yml"
SLOT_LABEL = "com.docker.swarm.task.name"


class Stack(Cluster):
    """One ``docker stack``: its services, their tasks, its secret and its volumes."""

    def __init__(
        self, name: str, *, admin_token: str, env: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(name, admin_token=admin_token, env=env)
        self.secret = f"{name}_admin_token"
        self.env["AILEDGER_ADMIN_SECRET"] = self.secret

    def __repr__(self) -> str:
        return f"<stack {self.project}>"

    def docker(self, *args: str, timeout: float = 300, stdin: bytes | None = None) -> str:
        done = run(["docker", *args], env=self.env, timeout=timeout, stdin=stdin)
        if done.returncode != 0:
            raise NodeFailure(
                f"docker {' '.join(args[:4])} failed ({done.returncode}):\n"
                f"{done.stderr.decode(errors='replace')[-3000:]}"
            )
        return done.stdout.decode(errors="replace")

    def service(self, name: str) -> str:
        return f"{self.project}_{name}"

    # --- lifecycle -----------------------------------------------------------------------

    def deploy(self) -> None:
        """Create the admin token's secret, then ``docker stack deploy``."""
        label = f"org.ailedger.e2e={self.project}"
        self.docker(
            "secret",
            "create",
            "--label",
            label,
            self.secret,
            "-",
            stdin=self.admin_token.encode(),
        )
        self.docker("stack", "deploy", "--compose-file", str(STACK_FILE), self.project)

    def down(self) -> None:
        """Remove the stack, then (once its containers are gone) its volumes, secret and
        network; never raises (used in finalizers)."""
        for node in self._nodes.values():
            node.close()
        run(["docker", "stack", "rm", self.project], timeout=120)
        namespace = f"label=com.docker.stack.namespace={self.project}"
        with contextlib.suppress(AssertionError):
            wait_until(
                lambda: not run(["docker", "ps", "-aq", "--filter", namespace]).stdout.strip(),
                timeout=120,
                what=f"{self} containers to be removed",
            )
        volumes = run(["docker", "volume", "ls", "-q", "--filter", namespace]).stdout.split()
        for volume in volumes:
            run(["docker", "volume", "rm", "-f", volume.decode()], timeout=60)
        run(["docker", "secret", "rm", self.secret], timeout=60)
        with contextlib.suppress(AssertionError):
            wait_until(
                lambda: (
                    not run(["docker", "network", "ls", "-q", "--filter", namespace]).stdout.strip()
                ),
                timeout=60,
                what=f"{self} network to be removed",
            )

    def logs(self, tail: int = 80) -> str:
        services = self.docker("stack", "services", "--format", "{{.Name}}", self.project)
        chunks = []
        for service in services.split():
            done = run(["docker", "service", "logs", "--no-trunc", f"--tail={tail}", service])
            chunks.append((done.stdout + done.stderr).decode(errors="replace"))
        return "\n".join(chunks)

    def scale(self, service: str, replicas: int) -> None:
        """``docker service scale`` and wait until the swarm has converged."""
        self.docker(
            "service", "scale", "--detach=false", f"{self.service(service)}={replicas}", timeout=600
        )

    def update(self, service: str, *args: str) -> None:
        """``docker service update`` (a rolling update, by the service's update_config),
        waiting until the swarm says it completed; fails if it paused or rolled back."""
        self.docker(
            "service", "update", "--detach=false", *args, self.service(service), timeout=900
        )
        # The command returns once the new tasks run; the update goes on "updating"
        # through the last task's monitor period.
        states: list[str] = []

        def settled() -> bool:
            states.append(self.update_state(service))
            return states[-1] not in ("updating", "rollback_started")

        wait_until(settled, timeout=300, what=f"the update of {service} to settle")
        if states[-1] != "completed":
            raise NodeFailure(f"the update of {service} ended {states[-1]!r}")

    def update_state(self, service: str) -> str:
        template = "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}"
        return self.docker("service", "inspect", "-f", template, self.service(service)).strip()

    # --- nodes ---------------------------------------------------------------------------

    def container_ids(self, service: str) -> list[str]:
        """The running container of each of ``service``'s tasks, ordered by slot."""
        ids = self.docker(
            "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={self.service(service)}"
        ).split()
        if not ids:
            return []
        names = self.docker("inspect", "-f", f'{{{{index .Config.Labels "{SLOT_LABEL}"}}}}', *ids)
        slots = [int(name.split(".")[1]) for name in names.split()]
        return [cid for _, cid in sorted(zip(slots, ids, strict=True))]

    def node(self, service: str, replica: int = 1) -> ServiceNode:
        """The task in ``service``'s ``replica``-th running container, looked up now."""
        old = self._nodes.pop((service, replica), None)
        if old is not None:
            old.close()
        return super().node(service, replica)

    def wait_tasks(self, service: str, count: int, *, timeout: float = 300) -> list[ServiceNode]:
        """Wait for ``count`` running containers of ``service``, then for them to be healthy."""
        wait_until(
            lambda: len(self.container_ids(service)) == count,
            timeout=timeout,
            what=f"{count} running tasks of {service}",
        )
        nodes = self.replicas(service)
        self.wait_healthy(nodes, timeout=timeout)
        return nodes


def container_state(cid: str) -> str:
    done = run(["docker", "inspect", "-f", "{{.State.Status}}", cid])
    return done.stdout.decode().strip() if done.returncode == 0 else "gone"


# Runs inside a task: which of the txids on stdin this node has confirmed (one exec for
# hundreds of records, where one exec each would take minutes).
CONFIRMED = """
import json, os, sys, urllib.error, urllib.request
base = "http://127.0.0.1:%s/v1/transactions/" % os.environ.get("AILEDGER_PORT", "8000")
found = []
for txid in json.load(sys.stdin):
    try:
        with urllib.request.urlopen(base + txid, timeout=30) as answer:
            if json.load(answer).get("status") == "confirmed":
                found.append(txid)
    except urllib.error.HTTPError:
        pass
print(json.dumps(found))
"""


def confirmed_on(node: ServiceNode, txids: Iterable[str]) -> set[str]:
    """The records in ``txids`` that ``node`` has confirmed."""
    done = run(
        ["docker", "exec", "-i", node.cid, "python", "-c", CONFIRMED],
        stdin=json.dumps(list(txids)).encode(),
        timeout=300,
    )
    if done.returncode != 0:
        raise Unreachable(f"{node} confirmed records: {done.stderr.decode(errors='replace')}")
    return set(json.loads(done.stdout))
