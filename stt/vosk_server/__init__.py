"""alphacep vosk-server's WebSocket API, for the clients written for it (telephony, scripts)."""
