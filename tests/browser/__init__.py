"""Real Chromium (and what the pages need): skipped without it, failed under CI."""
