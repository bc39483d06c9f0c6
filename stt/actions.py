"""What a protocol's sans-IO session rules ask of the connection that carries them out.

Every front door (SEPIA's ``stt.sepia``, vosk-server's ``stt.vosk_server``) turns what a
client sent into these actions; ``stt.server.connection.Connection`` carries them out
for all of them: authenticate and open a recognizer, decode audio, finish it, send a
message, close.  The options a session asks for are the same for every protocol too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stt.engines.base import RecognitionOptions

#: WebSocket close codes (RFC 6455) the server uses.
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY_VIOLATION = 1008
CLOSE_INTERNAL_ERROR = 1011
CLOSE_TRY_AGAIN_LATER = 1013


@dataclass(frozen=True, slots=True)
class SessionOptions:
    """What a session asks for: the model, its language and task, how results are shaped."""

    language: str | None = None
    model: str | None = None
    task: str | None = None
    continuous: bool = False
    optimize_final: bool = False
    #: ``interimResults: false`` suppresses partials (SEPIA, our decision 7).
    interim_results: bool = True
    recognition: RecognitionOptions = field(default_factory=RecognitionOptions)


@dataclass(frozen=True, slots=True)
class Send:
    message: Mapping[str, Any]
    #: For an error message: the error's name (what ``/metrics`` counts).
    error: str | None = None
    #: The last final: once it is sent, the session is complete.
    completes: bool = False


@dataclass(frozen=True, slots=True)
class OpenRecognizer:
    """Authenticate these credentials and open a recognizer with these options."""

    client_id: str | None
    access_token: str | None
    options: SessionOptions
    #: The id of the message that asked, for protocols whose answer echoes it.
    msg_id: int = 0
    #: A front door configured without authentication (vosk-server's API on loopback):
    #: no credentials are checked, and the session counts like one of the common token.
    anonymous: bool = False


@dataclass(frozen=True, slots=True)
class Decode:
    pcm: bytes


@dataclass(frozen=True, slots=True)
class EndOfAudio:
    """Decode what is left, then answer the request with this ``msg_id``."""

    msg_id: int = 0
    #: False for a reset: the session goes on with a fresh recognizer.
    ends_session: bool = True


@dataclass(frozen=True, slots=True)
class Close:
    code: int
    reason: str


Action = Send | OpenRecognizer | Decode | EndOfAudio | Close
