"""Writers: one module per output format. See :mod:`medconv.registry` for the contract."""
