"""The node's HTTP API (design.md §4)."""

from node.api.app import create_app

__all__ = ["create_app"]
