"""Reading: bounded YAML with source maps, JSON Schema checks, rule and procedural packs, profiles and cases."""
