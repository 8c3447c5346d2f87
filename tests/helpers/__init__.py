"""Conveniences only tests use, kept out of the production modules: one-call forms of
production functions the node itself only ever calls in their batch forms.

    ledger    connect_block_ledger, apply_block_txs (pure: consensus tests may use them)
    chain     process_block, connect_block, mempool_add (a ChainState or a Store)
"""
