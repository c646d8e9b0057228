"""The rule language's vocabulary: the fact and operator registries, and how a diagnosis names a condition row."""
