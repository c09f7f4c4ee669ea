"""Fast tests of one layer at a time: no sockets, no processes (pytest tests/unit)."""
