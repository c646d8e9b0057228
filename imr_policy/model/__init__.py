"""The values passed between the stages: rule packs, cases, decisions, diagnostics and errors (frozen, typed)."""
