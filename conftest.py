"""Registers the imr-policy pytest plugin, which collects the policy tests (policies/*/tests/*.yaml), in a
checkout where the package is not installed; an installed package registers it through its `pytest11`
entry point under the same name, so it is never registered twice."""

pytest_plugins = ["imr_policy.pytest_plugin"]
