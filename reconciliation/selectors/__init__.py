"""Reads that need a rule, one module per area."""
