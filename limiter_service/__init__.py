"""The rate limiter service: rules as data, window algorithms, memory and DynamoDB stores, FastAPI app."""

from __future__ import annotations

__version__ = "0.1.0"
