"""Interop with the ML supply chain's formats (design §11).

``node.interop.model_signing`` checks OpenSSF model-signing bundles offline and ties them
to this ledger's directory digest; ``node.interop.anchoring`` finds the attestation that
anchors a bundle on the most-work chain; ``node.interop.intoto`` exports a record and its
lineage as a DSSE-signed in-toto Statement with a SLSA provenance v1 predicate.
Each raises ``InteropError`` with a stable code for anything it refuses.
"""

from node.interop.errors import InteropError

__all__ = ["InteropError"]
