"""Real sockets, real servers and real processes on 127.0.0.1."""
