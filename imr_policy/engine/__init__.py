"""Deciding: facts from a case, the durable_rules adapter, the reference evaluator, and how decisions combine."""
