"""Tests of experiments/ (the paper tables runner)."""
