"""Entry points with the reference's module paths (run from the repository root)."""
