"""The policy author's tools: policy tests and coverage, lint, verify, generated cases, migrate and counterfactuals."""
