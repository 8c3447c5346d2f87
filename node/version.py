"""The software version, as installed (falls back to the source tree's)."""

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("ailedger")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    VERSION = "0.0.0+source"
