"""Reusable layers of the platform, one ComponentResource per layer (see ../README.md)."""
