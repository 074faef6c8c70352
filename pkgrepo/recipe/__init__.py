"""Recipe models, the step registry and YAML loading (import the module you need)."""
