"""The rules of one Wyoming connection (Home Assistant's voice protocol), without any I/O.

Events come in as ``{"type", "data"}`` text (audio chunks as their PCM payload) and go out
the same way; the ``wyoming`` package's own event types read and build them.  Per
utterance a client sends ``transcribe`` (model name, language; optional), ``audio-start``,
``audio-chunk``\\ s and ``audio-stop``, and gets ``transcript-start``, a
``transcript-chunk`` for each utterance the recognizer ends while audio still comes,
``transcript`` (the whole text; what older clients wait for) and ``transcript-stop``.
The chunks only ever append: they join up to the transcript.  ``describe`` gets ``info``
at any time.  Several utterances may follow on one connection, with the same model.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping
from typing import Any

from wyoming.asr import Transcribe, Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.audio import AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info

from stt.actions import (
    CLOSE_GOING_AWAY,
    CLOSE_NORMAL,
    CLOSE_TRY_AGAIN_LATER,
    Action,
    Close,
    Decode,
    EndOfAudio,
    OpenRecognizer,
    Send,
    SessionOptions,
)
from stt.audio import PcmFramer
from stt.engines.base import Hypothesis, RecognitionOptions
from stt.errors import (
    SHUTTING_DOWN,
    InvalidMessage,
    MessageTooLarge,
    NotPossible,
    ProcessError,
    ServerBusy,
    SttError,
)
from stt.limits import SessionLimits
from stt.pcm import BYTES_PER_SAMPLE, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE


class Phase(enum.Enum):
    #: Between utterances (or before the first): describe, transcribe, audio-start.
    READY = "ready"
    STREAMING = "streaming"
    #: ``audio-stop`` received: the transcript is on its way.
    STOPPED = "stopped"
    CLOSED = "closed"


def event_message(event: Event) -> dict[str, Any]:
    """An event as the rules send it: ``{"type", "data"}`` (payloads are never sent here)."""
    return {"type": event.type, "data": event.data}


class WyomingSession:
    name = "wyoming"

    def __init__(
        self,
        *,
        info: Info,
        timeout_s: float,
        now: float,
        max_session_s: float = math.inf,
        max_frame_bytes: int | None = None,
    ) -> None:
        """``info`` answers ``describe``: the server's ASR programs and models."""
        self._info = info
        self._limits = SessionLimits(now, timeout_s=timeout_s, max_session_s=max_session_s)
        self._max_frame_bytes = max_frame_bytes
        self._framer = PcmFramer()
        self._transcribe = Transcribe()
        #: The options of the recognizer opened for the first utterance.
        self._options: SessionOptions | None = None
        #: Utterances ended within this one's audio, already sent as chunks.
        self._heard: list[str] = []
        self._draining = False
        self.phase = Phase.READY

    @property
    def closed(self) -> bool:
        return self.phase is Phase.CLOSED

    def wire(self, message: Mapping[str, Any]) -> str:
        return json.dumps(message, ensure_ascii=False)

    # -- what the client sent --------------------------------------------------

    def receive_text(self, text: str, now: float) -> list[Action]:
        if self.phase is Phase.CLOSED:
            return []
        self._limits.touch(now)
        try:
            event = _parse(text)
            if Describe.is_type(event.type):
                return [Send(event_message(self._info.event()))]
            if Transcribe.is_type(event.type):
                self._transcribe = Transcribe.from_event(event)
                return []
            if AudioStart.is_type(event.type):
                return self._start(AudioStart.from_event(event))
            if AudioStop.is_type(event.type):
                if self.phase is not Phase.STREAMING:
                    raise ProcessError("'audio-stop' without 'audio-start'.")
                self.phase = Phase.STOPPED
                return [EndOfAudio(ends_session=False)]
            return []  # events for other services (wake, tts, ...) are not ours to answer
        except (KeyError, TypeError, ValueError) as error:
            return self.fail(InvalidMessage(f"Bad event: {error!r}."))
        except SttError as error:
            return self.fail(error)

    def _start(self, start: AudioStart) -> list[Action]:
        if self.phase is not Phase.READY:
            raise NotPossible("'audio-start' while an utterance is still open.")
        if start.width != BYTES_PER_SAMPLE or start.channels != 1:
            raise InvalidMessage(
                f"Audio must be 16-bit mono (width 2, channels 1), not width {start.width}, "
                f"channels {start.channels}."
            )
        if not MIN_SAMPLE_RATE <= start.rate <= MAX_SAMPLE_RATE:
            raise InvalidMessage(f"Audio rate {start.rate} is out of range.")
        options = SessionOptions(
            model=self._transcribe.name or None,
            language=self._transcribe.language or None,
            continuous=True,
            recognition=RecognitionOptions(sample_rate=float(start.rate)),
        )
        self._framer = PcmFramer()
        self._heard = []
        opened = self._options
        if opened is not None and opened != options:
            raise NotPossible("One model and audio format per connection: open a new one.")
        self.phase = Phase.STREAMING
        start_event = Send(event_message(TranscriptStart(language=options.language).event()))
        if opened is not None:
            return [start_event]
        self._options = options
        return [OpenRecognizer(None, None, options, anonymous=True), start_event]

    def receive_bytes(self, data: bytes, now: float) -> list[Action]:
        """An ``audio-chunk``'s payload."""
        if self.phase is Phase.CLOSED:
            return []
        self._limits.touch(now)
        if self.phase is not Phase.STREAMING:
            return self.fail(ProcessError("'audio-chunk' outside 'audio-start'/'audio-stop'."))
        if self._max_frame_bytes is not None and len(data) > self._max_frame_bytes:
            return self.fail(
                MessageTooLarge(
                    f"Audio chunk of {len(data)} bytes dropped: chunks may have at most "
                    f"{self._max_frame_bytes} bytes."
                )
            )
        pcm = self._framer.feed(data)
        return [Decode(pcm)] if pcm else []

    # -- what the recognizer side reports ----------------------------------------

    def recognizer_opened(
        self, request: OpenRecognizer, info: Mapping[str, Any], effective: Mapping[str, Any]
    ) -> list[Action]:
        return []

    def results(self, hypotheses: list[Hypothesis], frames: int = 1) -> list[Action]:
        """Utterances the recognizer ended while audio still comes, as transcript chunks."""
        if self.phase is Phase.CLOSED:
            return []
        return [self._chunk(h.text) for h in hypotheses if h.is_final and h.text]

    def audio_ended(self, msg_id: int, last: Hypothesis) -> list[Action]:
        if self.phase is Phase.CLOSED:
            return []
        actions: list[Action] = [self._chunk(last.text)] if last.text else []
        language = self._options.language if self._options else None
        transcript = Transcript(text=" ".join(self._heard), language=language)
        actions += [
            Send(event_message(transcript.event()), completes=True),
            Send(event_message(TranscriptStop().event())),
        ]
        self._heard = []
        self.phase = Phase.READY
        if self._draining:
            self.phase = Phase.CLOSED
            actions.append(Close(CLOSE_GOING_AWAY, "server shutting down"))
        return actions

    def _chunk(self, text: str) -> Send:
        """The chunks join up to the transcript: each after the first brings its space."""
        piece = f" {text}" if self._heard else text
        self._heard.append(text)
        return Send(event_message(TranscriptChunk(text=piece).event()))

    def drain(self) -> list[Action]:
        """The server is shutting down: an utterance under way may still get its transcript."""
        if self.phase is Phase.CLOSED:
            return []
        if self.phase is Phase.READY:
            return self.fail(ServerBusy(SHUTTING_DOWN))
        self._draining = True
        return []

    def heartbeat(self, now: float) -> list[Action]:
        """Wyoming has no pings: only the time limits."""
        return self.expire(now)

    def expire(self, now: float) -> list[Action]:
        if self.phase is Phase.CLOSED:
            return []
        # No deadline for the first audio: telephony clients connect before a call's audio.
        error = self._limits.expired(now, started=True)
        return self.fail(error) if error else []

    def fail(self, error: SttError) -> list[Action]:
        """Wyoming's ``error`` event (its code: the error's name), and a close if it ends."""
        if self.phase is Phase.CLOSED:
            return []
        error = self._limits.refused(error)
        actions: list[Action] = [
            Send(
                event_message(Error(text=error.message, code=error.name).event()), error=error.name
            )
        ]
        if error.closes_session:
            self.phase = Phase.CLOSED
            code = CLOSE_TRY_AGAIN_LATER if isinstance(error, ServerBusy) else CLOSE_NORMAL
            actions.append(Close(code, error.name))
        return actions


def _parse(text: str) -> Event:
    message = json.loads(text)
    return Event(type=message["type"], data=message.get("data") or {})
