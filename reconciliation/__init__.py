"""Reconciliation: proving daily that every yen the network reports is accounted for."""
