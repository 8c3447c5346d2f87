"""Node settings: every ``ailedger node`` flag, also as an ``AILEDGER_<FLAG>`` variable.

``create_app(settings)`` and ``Node(settings)`` take a ``Settings`` explicitly (no import-
time singleton), so one test process can run several nodes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AnyHttpUrl, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from consensus.params import NETWORKS, ConsensusParams

__all__ = ["DnsName", "Settings", "parse_size"]

_UNITS = {"": 1, "B": 1, "KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "TIB": 1 << 40}
_SIZE_RE = re.compile(r"\s*(\d+)\s*([A-Za-z]*)\s*")


def parse_size(text: str) -> int:
    """Bytes of a size with an optional binary unit: ``4096``, ``512MiB``, ``1GiB``."""
    match = _SIZE_RE.fullmatch(text)
    unit = match.group(2).upper() if match else ""
    if match is None or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a size (a whole number with B, KiB, MiB, GiB or TiB)")
    return int(match.group(1)) * _UNITS[unit]


@dataclass(frozen=True)
class DnsName:
    """A name to resolve and the port its nodes' APIs listen on."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str, default_port: int) -> DnsName:
        """``NAME`` or ``NAME:PORT`` (``default_port`` when none); ``ValueError`` if bad."""
        text = text.strip()
        host, sep, port_text = text.rpartition(":")
        if not sep:
            host, port_text = text, ""
        if not host or any(c in "/:[]@" or c.isspace() for c in host + port_text):
            raise ValueError(f"peer DNS name must be NAME or NAME:PORT, not {text!r}")
        if not port_text:
            return cls(host.lower(), default_port)
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"bad port in peer DNS name {text!r}")
        return cls(host.lower(), int(port_text))

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AILEDGER_", extra="forbid")

    network: str = "devnet"
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    data_dir: Path = Path("./ailedger-data")
    peers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Seed peers' base URLs (``AILEDGER_PEERS`` takes a comma-separated list)."""
    peer_dns: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Names whose every A/AAAA record is a peer, ``NAME[:PORT]`` (port: ``port``);
    ``AILEDGER_PEER_DNS`` takes a comma-separated list. See ``node.p2p.dns``."""
    peer_dns_interval: float = Field(30.0, ge=1.0, le=3600.0)
    """Seconds between two resolutions of the ``peer_dns`` names."""
    listen_url: str | None = None
    """The URL peers should use to reach this node (default: http://host:port)."""
    mine: bool = False
    miner_workers: int = Field(1, ge=1, le=64)
    miner_key: Path | None = None
    admin_token: str | None = None
    admin_token_file: Path | None = None
    """A file holding the admin token (a Docker or Kubernetes secret); read at start."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    mempool_max_count: int = Field(50_000, ge=1)
    mempool_max_bytes: int = Field(64 << 20, ge=8192)
    max_body_bytes: int = Field(4 << 20, ge=16_384)
    rate_limit_per_s: float = Field(200.0, gt=0)
    """Sustained write requests per second per client address (token bucket)."""
    rate_limit_burst: int = Field(400, ge=1)
    max_outbound: int = Field(8, ge=0)
    max_inbound: int = Field(32, ge=0)

    blob_quota: int | None = Field(None, ge=0)
    """Bytes of encrypted artifacts (blobs) this node keeps (``512MiB``, ``1GiB``); unset:
    none, and no replication (design §12)."""
    blob_max_size: int | None = Field(None, ge=0)
    """The largest blob accepted (default: the quota)."""
    blob_grace_s: float = Field(24 * 3600.0, ge=0)
    """How long a blob no confirmed record references is kept."""
    blob_uploads_per_minute: float = Field(60.0, gt=0)
    blob_uploads_at_once: int = Field(4, ge=1)

    @field_validator("network")
    @classmethod
    def _known_network(cls, value: str) -> str:
        if value not in NETWORKS:
            raise ValueError(f"unknown network {value!r}; choose one of {', '.join(NETWORKS)}")
        return value

    @field_validator("peers", "peer_dns", mode="before")
    @classmethod
    def _split_peers(cls, value: object) -> object:
        if isinstance(value, str):
            return [p.strip() for p in value.split(",") if p.strip()]
        return value

    @field_validator("peers")
    @classmethod
    def _peer_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            AnyHttpUrl(url)  # raises a clear validation error for a bad URL
        return [url.rstrip("/") for url in value]

    @field_validator("blob_quota", "blob_max_size", mode="before")
    @classmethod
    def _size(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_size(value) if value.strip() else None  # empty: unset
        return value

    @field_validator("peer_dns")
    @classmethod
    def _dns_names(cls, value: list[str]) -> list[str]:
        for name in value:
            DnsName.parse(name, 0)  # raises a clear validation error for a bad name
        return value

    @field_validator("admin_token")
    @classmethod
    def _token_not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            return None
        return value

    @model_validator(mode="after")
    def _read_admin_token_file(self) -> Settings:
        if self.admin_token_file is None:
            return self
        if self.admin_token is not None:
            raise ValueError("give the admin token or a file holding it, not both")
        try:
            token = self.admin_token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read the admin token file: {exc}") from exc
        if not token:
            raise ValueError(f"the admin token file {self.admin_token_file} is empty")
        self.admin_token = token
        return self

    @property
    def dns_names(self) -> list[DnsName]:
        return [DnsName.parse(name, self.port) for name in self.peer_dns]

    @property
    def params(self) -> ConsensusParams:
        return NETWORKS[self.network]

    @property
    def public_url(self) -> str:
        return (self.listen_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def db_path(self) -> Path:
        return self.data_dir / f"{self.network}.sqlite3"
