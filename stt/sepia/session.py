"""The rules of one SEPIA session, as a state machine without any I/O.

The transport feeds in what the client sent (``receive_text``/``receive_bytes``)
and what the engine produced (``results``/``audio_ended``), and gets back
actions to carry out: messages to send, audio to decode, a recognizer to open,
a close.  Everything a client can observe about message order, errors and
states is decided here, so it can be tested without a socket.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from typing import Any

from stt.actions import (
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL_ERROR,
    CLOSE_NORMAL,
    CLOSE_POLICY_VIOLATION,
    CLOSE_TRY_AGAIN_LATER,
    Action,
    Close,
    Decode,
    EndOfAudio,
    OpenRecognizer,
    Send,
)
from stt.audio import PcmFramer, WavFormat
from stt.engines.base import Hypothesis
from stt.errors import (
    SHUTTING_DOWN,
    InvalidMessage,
    MessageTooLarge,
    NotPossible,
    ProcessError,
    ServerBusy,
    SttError,
    TimeoutMessage,
    TooManyErrors,
    Unauthorized,
)
from stt.limits import SessionLimits
from stt.pcm import DEFAULT_SAMPLE_RATE
from stt.sepia import protocol
from stt.sepia.protocol import UNSTAMPED, ClientMessage
from stt.sepia.transcripts import TranscriptAssembler


class Phase(enum.Enum):
    AWAITING_WELCOME = "awaiting welcome"
    #: Welcome received: audio is accepted (and queued until the recognizer is open).
    STREAMING = "streaming"
    #: ``audioend`` received: the last final is on its way.
    AUDIO_ENDED = "audio ended"
    CLOSED = "closed"


class SessionProtocol:
    name = "sepia"

    def __init__(
        self,
        *,
        timeout_s: float,
        now: float,
        welcome_timeout_s: float = math.inf,
        max_session_s: float = math.inf,
        max_frame_bytes: int | None = None,
        ids: protocol.MessageIds | None = None,
    ) -> None:
        #: Server message ids, shared by all sessions of a server; taken when a message is sent.
        self._ids = ids or protocol.MessageIds()
        self._limits = SessionLimits(
            now,
            timeout_s=timeout_s,
            start_timeout_s=welcome_timeout_s,
            max_session_s=max_session_s,
        )
        self._max_frame_bytes = max_frame_bytes
        self._framer = PcmFramer()
        self._assembler: TranscriptAssembler | None = None
        self._words = False
        self._speaker = False
        self._draining = False
        self._final_sent = False
        self._sample_rate = float(DEFAULT_SAMPLE_RATE)
        self.phase = Phase.AWAITING_WELCOME

    @property
    def closed(self) -> bool:
        return self.phase is Phase.CLOSED

    def wire(self, message: Mapping[str, Any]) -> str:
        """The message as sent: a server message id is taken now (``protocol.stamp``)."""
        return protocol.encode(protocol.stamp(message, self._ids))

    # -- what the client sent --------------------------------------------------

    def receive_text(self, text: str, now: float) -> list[Action]:
        if self.phase is Phase.CLOSED:
            return []
        try:
            message = protocol.parse_client_message(text)
            actions = self._handle(message)
        except SttError as error:
            return self.fail(error)
        self._limits.touch(now)
        return actions

    def receive_bytes(self, data: bytes, now: float) -> list[Action]:
        if self.phase is Phase.AWAITING_WELCOME:
            return self.fail(Unauthorized("Binary data can only be sent after authentication."))
        if self.phase is Phase.AUDIO_ENDED:
            return self.fail(ProcessError("Audio has ended: the session accepts no more audio."))
        if self.phase is Phase.CLOSED:
            return []
        if self._max_frame_bytes is not None and len(data) > self._max_frame_bytes:
            return self.fail(
                MessageTooLarge(
                    f"Audio frame of {len(data)} bytes dropped: frames may have at most "
                    f"{self._max_frame_bytes} bytes."
                )
            )
        self._limits.touch(now)
        header_seen = self._framer.wav_format is not None
        pcm = self._framer.feed(data)
        actions: list[Action] = [Decode(pcm)] if pcm else []
        wav_format = self._framer.wav_format
        if wav_format is not None and not header_seen:
            problem = wav_format_problem(wav_format, self._sample_rate)
            if problem:
                return self.fail(InvalidMessage(problem)) + actions
        return actions

    def _handle(self, message: ClientMessage) -> list[Action]:
        if message.type == "welcome":
            if self.phase is not Phase.AWAITING_WELCOME:
                raise NotPossible("Multiple 'welcome' messages are not supported.")
            options = protocol.parse_welcome_options(message.data)
            self._sample_rate = options.recognition.sample_rate
            self.phase = Phase.STREAMING
            return [
                OpenRecognizer(message.client_id, message.access_token, options, message.msg_id)
            ]
        if self.phase is Phase.AWAITING_WELCOME:
            raise Unauthorized("In current state only 'welcome' message is allowed.")
        if message.type == "pong":
            return []
        if message.type == "audioend":
            if self.phase is not Phase.STREAMING:
                return []  # SEPIA's web worker asks twice: the first one is being answered
            self.phase = Phase.AUDIO_ENDED
            return [EndOfAudio(message.msg_id)]
        raise InvalidMessage(f"Unknown message type {message.type!r}.")

    # -- what the recognizer side reports ----------------------------------------

    def recognizer_opened(
        self, welcome: OpenRecognizer, info: Mapping[str, Any], effective: Mapping[str, Any]
    ) -> list[Action]:
        """The welcome ack; from now on results can flow."""
        if self.phase is Phase.CLOSED:
            return []
        options = welcome.options
        self._words = bool(effective.get("words"))
        self._speaker = bool(effective.get("speaker"))
        self._assembler = TranscriptAssembler(
            continuous=options.continuous,
            interim_results=options.interim_results,
            optimize_final=options.optimize_final,
            language=info["options"].get("language"),
        )
        return [Send(protocol.welcome_message(welcome.msg_id, info))]

    def results(self, hypotheses: list[Hypothesis], frames: int = 1) -> list[Action]:
        """What the client sees of an engine call's results (``frames``: audio frames it
        decoded, which SEPIA does not answer one by one)."""
        if self.phase is Phase.CLOSED:
            return []
        assert self._assembler is not None, "results before the recognizer was opened"
        return [self._result(h) for h in self._assembler.add(hypotheses)]

    def audio_ended(self, msg_id: int, last: Hypothesis) -> list[Action]:
        """``response`` first, then exactly one final (our decision 3)."""
        if self.phase is Phase.CLOSED:
            return []
        assert self._assembler is not None, "audioend before the recognizer was opened"
        self._final_sent = True
        actions: list[Action] = [
            Send(protocol.audioend_response(msg_id)),
            self._result(self._assembler.finish(last), completes=True),
        ]
        if self._draining:
            actions.append(self._going_away())
        return actions

    def drain(self) -> list[Action]:
        """The server is shutting down: a running stream may still reach its final."""
        if self.phase is Phase.CLOSED:
            return []
        if self.phase is Phase.AWAITING_WELCOME:
            return self.fail(ServerBusy(SHUTTING_DOWN))
        if self._final_sent:
            return [self._going_away()]
        self._draining = True
        return []

    def _going_away(self) -> Close:
        self.phase = Phase.CLOSED
        return Close(CLOSE_GOING_AWAY, "server shutting down")

    def heartbeat(self, now: float) -> list[Action]:
        """Called every heartbeat interval: a ping, or the end of an idle session."""
        if self.phase is Phase.CLOSED:
            return []
        return self.expire(now) or [Send(protocol.ping_message(UNSTAMPED))]

    def expire(self, now: float) -> list[Action]:
        """The end of a session that ran out of time: idle, no welcome, or too long."""
        if self.phase is Phase.CLOSED:
            return []
        error = self._limits.expired(now, started=self.phase is not Phase.AWAITING_WELCOME)
        return self.fail(error) if error else []

    def fail(self, error: SttError) -> list[Action]:
        """The error message, and a close if the error ends the session."""
        if self.phase is Phase.CLOSED:
            return []
        error = self._limits.refused(error, started=self.phase is not Phase.AWAITING_WELCOME)
        actions: list[Action] = [Send(protocol.error_message(UNSTAMPED, error), error=error.name)]
        if error.closes_session:
            self.phase = Phase.CLOSED
            actions.append(Close(_close_code(error), error.name))
        return actions

    def _result(self, hypothesis: Hypothesis, *, completes: bool = False) -> Send:
        message = protocol.result_message(
            UNSTAMPED, hypothesis, words=self._words, speaker=self._speaker
        )
        return Send(message, completes=completes)


def _close_code(error: SttError) -> int:
    if isinstance(error, TimeoutMessage | ServerBusy):
        return CLOSE_TRY_AGAIN_LATER
    if isinstance(error, TooManyErrors):
        return CLOSE_POLICY_VIOLATION
    if error.code >= 500 and error.name != "ChunkProcessorError":
        return CLOSE_INTERNAL_ERROR
    return CLOSE_NORMAL


def wav_format_problem(wav_format: WavFormat, sample_rate: float) -> str | None:
    """Why a stream's WAV header does not fit the session, if it does not.

    The audio is still decoded (the client may know better), but the client is told.
    """
    if wav_format.channels != 1 or wav_format.bits_per_sample != 16:
        return (
            f"The WAV header says {wav_format.channels} channel(s) of {wav_format.bits_per_sample}"
            "-bit audio: only 16-bit mono PCM is understood."
        )
    if wav_format.sample_rate != sample_rate:
        return (
            f"The WAV header says {wav_format.sample_rate} Hz but the session expects "
            f"{sample_rate:g} Hz: give 'samplerate' in the welcome."
        )
    return None
