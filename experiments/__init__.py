"""Experiments that run the project's binaries (the paper's tables)."""
