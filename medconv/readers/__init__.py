"""Readers: one module per input format. See :mod:`medconv.registry` for the contract."""
