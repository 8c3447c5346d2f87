"""``python -m node``: the ``ailedger`` command line."""

from node.cli import main

main()
