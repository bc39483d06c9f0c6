"""The rules of one vosk-server session (alphacep vosk-server's ``websocket/asr_server.py``
API), as a state machine without any I/O, driven by the same connection as SEPIA's.

A client may first send ``{"config": {...}}`` (``sample_rate``, ``words``,
``max_alternatives``, ``phrase_list``, ``model``), then binary 16-bit PCM, and
``{"eof" : 1}`` to end.  Every binary message gets exactly one JSON reply, as
vosk-server's clients expect (they send a chunk, then read a reply): ``{"partial":
...}`` while an utterance goes on, ``{"text": ..., "result": [...]}`` when one ends,
``{"alternatives": [...]}`` with an n-best list.  ``{"eof" : 1}`` gets the last
final and the close; ``{"reset" : 1}`` gets the final so far and starts anew.
Where vosk-server would drop the connection (bad JSON, bad config), the client
gets ``{"error": "..."}``: as its reply to an audio chunk or a bad message, or
before the close.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
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
    SessionOptions,
)
from stt.audio import PcmFramer
from stt.engines.base import MAX_ALTERNATIVES, Hypothesis, RecognitionOptions, Word
from stt.errors import (
    SHUTTING_DOWN,
    InvalidMessage,
    MessageTooLarge,
    ProcessError,
    ServerBusy,
    SttError,
    TimeoutMessage,
    TooManyErrors,
    Unauthorized,
)
from stt.limits import SessionLimits
from stt.pcm import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE

#: ``EndOfAudio`` ids: the end of the stream, or a reset that goes on.
EOF_ID = 1
RESET_ID = 2


@dataclass(frozen=True, slots=True)
class VoskConfig:
    """What a session decodes with: vosk-server's defaults, then the client's ``config``."""

    sample_rate: float = 8000.0
    words: bool = True
    max_alternatives: int = 0
    phrase_list: tuple[str, ...] = ()
    model: str | None = None
    #: Speaker vectors whenever the server has a speaker model, as vosk-server does.
    speaker: bool = False

    def options(self) -> SessionOptions:
        return SessionOptions(
            model=self.model,
            continuous=True,
            recognition=RecognitionOptions(
                sample_rate=self.sample_rate,
                alternatives=self.max_alternatives,
                words=self.words,
                phrases=self.phrase_list,
                speaker=self.speaker,
            ),
        )


class Phase(enum.Enum):
    CONFIGURING = "configuring"
    STREAMING = "streaming"
    ENDED = "ended"
    CLOSED = "closed"


class VoskSession:
    name = "vosk-server"

    def __init__(
        self,
        *,
        config: VoskConfig,
        credentials: tuple[str | None, str | None] | None,
        timeout_s: float,
        now: float,
        max_session_s: float = math.inf,
        max_frame_bytes: int | None = None,
    ) -> None:
        """``credentials`` (client id, token) from the upgrade request; None: no authentication."""
        self._config = config
        self._credentials = credentials
        self._limits = SessionLimits(now, timeout_s=timeout_s, max_session_s=max_session_s)
        self._max_frame_bytes = max_frame_bytes
        self._framer = PcmFramer()
        self._partial = ""
        self._draining = False
        self.phase = Phase.CONFIGURING

    @property
    def closed(self) -> bool:
        return self.phase is Phase.CLOSED

    def wire(self, message: Mapping[str, Any]) -> str:
        return json.dumps(message, ensure_ascii=False)

    # -- what the client sent --------------------------------------------------

    def receive_text(self, text: str, now: float) -> list[Action]:
        if self.phase in (Phase.CLOSED, Phase.ENDED):
            return []
        self._limits.touch(now)
        message: dict[str, Any] = {}
        try:
            message = _parse(text)
            if "config" in message:
                return self._configure(message["config"])
        except InvalidMessage as error:
            if "config" not in message:
                return self.fail(error)
            # A config has no reply: a client would read its error as an audio chunk's.
            actions = self.fail(error)
            self.phase = Phase.CLOSED
            return [*actions, Close(CLOSE_POLICY_VIOLATION, "bad config")]
        try:
            if "eof" in message:
                opened = self._open()
                self.phase = Phase.ENDED
                return [*opened, EndOfAudio(EOF_ID)]
            if "reset" in message:
                return [*self._open(), EndOfAudio(RESET_ID, ends_session=False)]
            raise InvalidMessage("Expected 'config', 'eof' or 'reset', or binary audio.")
        except SttError as error:
            return self.fail(error)

    def _configure(self, config: object) -> list[Action]:
        """vosk-server answers nothing to a config; one after the audio started changes nothing."""
        if self.phase is not Phase.CONFIGURING:
            return []
        self._config = _configured(self._config, config)
        return []

    def receive_bytes(self, data: bytes, now: float) -> list[Action]:
        if self.phase in (Phase.CLOSED, Phase.ENDED):
            return []
        self._limits.touch(now)
        if self._max_frame_bytes is not None and len(data) > self._max_frame_bytes:
            return self.fail(
                MessageTooLarge(
                    f"Audio message of {len(data)} bytes dropped: messages may have at most "
                    f"{self._max_frame_bytes} bytes."
                )
            )
        actions = self._open()
        pcm = self._framer.feed(data)
        # One reply per message, also for one without a whole sample (in order, behind the rest).
        return [*actions, Decode(pcm) if pcm else Send({"partial": self._partial})]

    def _open(self) -> list[Action]:
        """The recognizer is opened (and the client authenticated) at the first audio or end."""
        if self.phase is not Phase.CONFIGURING:
            return []
        self.phase = Phase.STREAMING
        client_id, token = self._credentials or (None, None)
        return [
            OpenRecognizer(
                client_id, token, self._config.options(), anonymous=self._credentials is None
            )
        ]

    # -- what the recognizer side reports ----------------------------------------

    def recognizer_opened(
        self, request: OpenRecognizer, info: Mapping[str, Any], effective: Mapping[str, Any]
    ) -> list[Action]:
        """vosk-server has no acknowledgement: results are the first thing a client reads."""
        return []

    def results(self, hypotheses: list[Hypothesis], frames: int = 1) -> list[Action]:
        """One reply per audio message decoded: a final if one ended, else the partial."""
        if self.phase is Phase.CLOSED:
            return []
        finals = [h for h in hypotheses if h.is_final]
        for hypothesis in hypotheses:
            self._partial = "" if hypothesis.is_final else hypothesis.text
        replies: list[Action] = []
        if finals:
            replies.append(Send(self._final(_joined(finals))))
        while len(replies) < frames:
            replies.append(Send({"partial": self._partial}))
        return replies

    def audio_ended(self, msg_id: int, last: Hypothesis) -> list[Action]:
        if self.phase is Phase.CLOSED:
            return []
        self._partial = ""
        final = Send(self._final(last), completes=msg_id == EOF_ID)
        if msg_id == RESET_ID and not self._draining:
            return [final]
        self.phase = Phase.CLOSED
        if self._draining:
            return [final, Close(CLOSE_GOING_AWAY, "server shutting down")]
        return [final, Close(CLOSE_NORMAL, "eof")]

    def drain(self) -> list[Action]:
        """The server is shutting down: a running stream may still reach its end."""
        if self.phase is Phase.CLOSED:
            return []
        if self.phase is Phase.CONFIGURING:
            return self.fail(ServerBusy(SHUTTING_DOWN))
        self._draining = True
        return []

    def heartbeat(self, now: float) -> list[Action]:
        """No pings: vosk-server's clients read exactly one reply per message they send."""
        return self.expire(now)

    def expire(self, now: float) -> list[Action]:
        if self.phase is Phase.CLOSED:
            return []
        # No deadline for the first audio: telephony clients connect before a call's audio.
        error = self._limits.expired(now, started=True)
        return self.fail(error) if error else []

    def fail(self, error: SttError) -> list[Action]:
        """``{"error": ...}``, and a close if the error ends the session."""
        if self.phase is Phase.CLOSED:
            return []
        error = self._limits.refused(error)
        actions: list[Action] = [Send({"error": error.message}, error=error.name)]
        if error.closes_session:
            self.phase = Phase.CLOSED
            actions.append(Close(_close_code(error), error.name))
        return actions

    def _final(self, hypothesis: Hypothesis) -> dict[str, Any]:
        """vosk-server's final: Vosk's own ``Result()`` shapes."""
        config = self._config
        if config.max_alternatives > 0 and hypothesis.alternatives is not None:
            best = _alternative(hypothesis.text, hypothesis.confidence, hypothesis.words, config)
            others = [
                _alternative(a.text, a.confidence, a.words, config) for a in hypothesis.alternatives
            ]
            return {"alternatives": [best, *others]}
        reply: dict[str, Any] = {}
        if config.words and hypothesis.words:
            reply["result"] = [_word(w) for w in hypothesis.words]
        reply["text"] = hypothesis.text
        if hypothesis.speaker_vector:
            reply["spk"] = list(hypothesis.speaker_vector)
        return reply


def _parse(text: str) -> dict[str, Any]:
    try:
        message = json.loads(text)
    except ValueError as error:
        raise InvalidMessage(f"Not JSON: {error}") from None
    if not isinstance(message, dict):
        raise InvalidMessage("A text message must be a JSON object.")
    return message


def _configured(config: VoskConfig, data: object) -> VoskConfig:
    """A client's ``config`` over the defaults; vosk-server's types, checked."""
    if not isinstance(data, dict):
        raise InvalidMessage("'config' must be a JSON object.")
    if "sample_rate" in data:
        rate = data["sample_rate"]
        if isinstance(rate, bool) or not isinstance(rate, int | float):
            raise InvalidMessage("'sample_rate' must be a number.")
        if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
            raise InvalidMessage(
                f"'sample_rate' {rate:g} is out of range ({MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE})."
            )
        config = replace(config, sample_rate=float(rate))
    if "words" in data:
        config = replace(config, words=bool(data["words"]))
    if "max_alternatives" in data:
        count = data["max_alternatives"]
        if isinstance(count, bool) or not isinstance(count, int):
            raise InvalidMessage("'max_alternatives' must be a whole number.")
        if not 0 <= count <= MAX_ALTERNATIVES:
            raise InvalidMessage(f"'max_alternatives' must be 0 to {MAX_ALTERNATIVES}.")
        config = replace(config, max_alternatives=count)
    if "phrase_list" in data:
        phrases = data["phrase_list"]
        if not isinstance(phrases, list) or not all(isinstance(p, str) for p in phrases):
            raise InvalidMessage("'phrase_list' must be a list of strings.")
        config = replace(config, phrase_list=tuple(phrases))
    if "model" in data:
        model = data["model"]
        if not isinstance(model, str) or not model:
            raise InvalidMessage("'model' must be a model name.")
        config = replace(config, model=model)
    return config


def _joined(finals: list[Hypothesis]) -> Hypothesis:
    """Utterances that ended within one engine call, as the one final its message gets."""
    if len(finals) == 1:
        return finals[0]
    return Hypothesis(
        " ".join(f.text for f in finals if f.text),
        is_final=True,
        confidence=min(f.confidence for f in finals),
        words=tuple(w for f in finals for w in f.words),
    )


def _alternative(
    text: str, confidence: float, words: tuple[Word, ...], config: VoskConfig
) -> dict[str, Any]:
    """One n-best entry as Vosk writes it: its words carry no per-word confidence."""
    entry: dict[str, Any] = {"confidence": confidence}
    if config.words:
        entry["result"] = [_word(w, confidence=False) for w in words]
    return entry | {"text": text}


def _word(word: Word, *, confidence: bool = True) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    if confidence:
        entry["conf"] = 1.0 if word.confidence is None else word.confidence
    return entry | {"end": word.end, "start": word.start, "word": word.word}


def _close_code(error: SttError) -> int:
    if isinstance(error, TimeoutMessage | ServerBusy):
        return CLOSE_TRY_AGAIN_LATER
    if isinstance(error, Unauthorized | TooManyErrors | InvalidMessage | ProcessError):
        return CLOSE_POLICY_VIOLATION
    if error.code >= 500:
        return CLOSE_INTERNAL_ERROR
    return CLOSE_NORMAL
