"""Wording: the rationale, the UR wording and the tables, formatted from what the engine decided."""
