"""Model registry entries (filled by the generators work; see rtdmd_bench/models/__init__.py)."""
