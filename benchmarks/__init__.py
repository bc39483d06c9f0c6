"""Load benchmark of the server against the same engine decoding in-process (see README.md)."""
