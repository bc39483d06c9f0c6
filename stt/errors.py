"""Errors a client can see: each type carries the wire ``code`` and ``name``.

The names and codes come from the SEPIA STT wire contract; clients key on them
(the SEPIA app maps ``Unauthorized`` to "service-not-allowed"), so they must not
change.  Raise these anywhere in the session logic; the transport turns them into
``{"type": "error", "code": ..., "name": ..., "message": ...}``.
"""

from __future__ import annotations

from typing import ClassVar


class SttError(Exception):
    """Base class of every error that is reported to a client."""

    code: ClassVar[int] = 500
    name: ClassVar[str] = "Error"
    #: Whether the session ends after this error is sent.
    closes_session: ClassVar[bool] = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidMessage(SttError):
    """A text frame that is not a valid protocol message."""

    code = 400
    name = "InvalidMessage"


class Unauthorized(SttError):
    """Audio or a message before authentication."""

    code = 401
    name = "Unauthorized"


class AuthenticationFailed(Unauthorized):
    """A wrong or missing token: the session ends."""

    closes_session = True


class NotPossible(SttError):
    """A request that is valid but cannot be served in this state."""

    code = 418
    name = "NotPossible"


class ProcessError(SttError):
    """Audio that arrives when the session no longer accepts any."""

    code = 400
    name = "ProcessError"


class ChunkProcessorError(SttError):
    """The recognizer for the session could not be created: the session ends."""

    code = 500
    name = "ChunkProcessorError"
    closes_session = True


class ModelNotFound(ChunkProcessorError):
    """No configured model matches the requested model, language or task."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"Failed to create processor: ModelNotFound: {detail}")


class EngineNotFound(ChunkProcessorError):
    """The model names an engine that is not installed."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"Failed to create processor: EngineNotFound: {detail}")


class AsrEngineError(SttError):
    """The engine failed while decoding: the session ends, the server goes on."""

    code = 500
    name = "AsrEngineError"
    closes_session = True


class TimeoutMessage(SttError):
    """The client was inactive for too long."""

    code = 408
    name = "TimeoutMessage"
    closes_session = True


class InternalError(SttError):
    """An unexpected failure inside the session."""

    code = 500
    name = "Error"
    closes_session = True


class MessageTooLarge(SttError):
    """A frame above the size limit; it is dropped, the session goes on."""

    code = 413
    name = "MessageTooLarge"


#: What a client is told while the server drains.
SHUTTING_DOWN = "Server is shutting down. Try again later."


class ServerBusy(SttError):
    """The server is at a session limit, or shutting down: try again later."""

    code = 503
    name = "ServerBusy"
    closes_session = True


class TooManyErrors(SttError):
    """A client that keeps sending what the server must refuse is cut off."""

    code = 429
    name = "TooManyErrors"
    closes_session = True


# -- files (the HTTP transcription endpoints and ``sepia-stt transcribe``) ---------------------


class InvalidRequest(SttError):
    """A transcription request with a missing or invalid field; the message names it."""

    code = 400
    name = "InvalidRequest"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        #: The request field at fault, where there is one.
        self.field = field


class InvalidAudio(SttError):
    """An audio file that opens but cannot be decoded (truncated, corrupt, empty)."""

    code = 400
    name = "InvalidAudio"


class UnsupportedMedia(SttError):
    """A file that is not audio in a container and codec the decoder knows."""

    code = 415
    name = "UnsupportedMedia"


class FileTooLarge(SttError):
    """An upload above the size limit, or audio above the duration limit."""

    code = 413
    name = "FileTooLarge"


class TooManyJobs(SttError):
    """Every place for file transcriptions is taken: try again in a moment."""

    code = 429
    name = "TooManyJobs"
