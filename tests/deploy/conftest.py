"""What the deployment tests share: the repository's files and the node's own settings.

The manifests and the stack file are checked against the node itself: an environment
variable must be a setting ``ailedger node`` reads, a probe must ask a route the API has,
the user must be the Dockerfile's. Nothing here runs docker or a cluster.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from node.api.routes.chain import router
from node.config import Settings

__all__ = [
    "DEPLOY",
    "ENV_PREFIX",
    "ROOT",
    "api_paths",
    "dockerfile_uid",
    "load_all",
    "setting_name",
]

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
ENV_PREFIX = "AILEDGER_"


def load_all(path: Path) -> list[dict[str, Any]]:
    """Every YAML document in ``path`` (anchors and ``<<`` merge keys resolved)."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def setting_name(env_name: str) -> str | None:
    """The ``Settings`` field an ``AILEDGER_*`` variable sets, or None if it sets none."""
    if not env_name.startswith(ENV_PREFIX):
        return None
    field = env_name.removeprefix(ENV_PREFIX).lower()
    return field if field in Settings.model_fields else None


def api_paths() -> set[str]:
    """The paths of the node routes that a probe may ask (``/healthz``, ``/metrics``)."""
    return {route.path for route in router.routes if hasattr(route, "path")}


def dockerfile_uid() -> int:
    """The unprivileged uid the image runs as (``ARG UID=...`` in the Dockerfile)."""
    match = re.search(r"^ARG UID=(\d+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert match, "the Dockerfile no longer declares ARG UID"
    return int(match.group(1))
