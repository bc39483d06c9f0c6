"""The SEPIA STT wire protocol and session rules, sans-IO: no Trio, no sockets, time passed in."""
