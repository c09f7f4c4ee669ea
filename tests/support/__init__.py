"""What the tests share: real servers, real processes, real clients."""
