"""Building packages from recipes: sandbox, pipeline, split, scan, plan."""
