"""The audio every part of the server shares: signed 16-bit little-endian mono PCM."""

from __future__ import annotations

#: The rate a session's audio has unless its welcome gives ``samplerate`` (and the rate
#: Whisper and nearly every client use).
DEFAULT_SAMPLE_RATE = 16000
BYTES_PER_SAMPLE = 2
#: Sample rates a client may ask for.
MIN_SAMPLE_RATE = 4000
MAX_SAMPLE_RATE = 192000
