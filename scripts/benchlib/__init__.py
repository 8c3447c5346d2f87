"""The pieces of ``scripts/bench``: baselines, timing, servers, load, and one module per
group of figures. Not part of the ``ailedger`` distribution."""
