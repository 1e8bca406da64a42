"""Benchmarks for the limiter service (run on demand, never in the test suite)."""
