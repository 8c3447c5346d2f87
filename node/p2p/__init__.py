"""The peer-to-peer layer (design.md §5): peers, gossip, headers-first sync."""

from node.p2p.client import PeerClient, PeerRefused, PeerUnavailable
from node.p2p.peers import Direction, Peer, PeerTable
from node.p2p.service import P2P

__all__ = ["P2P", "Direction", "Peer", "PeerClient", "PeerRefused", "PeerTable", "PeerUnavailable"]
