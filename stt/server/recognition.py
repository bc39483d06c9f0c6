"""One session's decoder on Trio: made at the first audio, fed in engine threads, freed once.

Every engine call runs in a worker thread while the task holds one of the
service's engine slots (``SpeechService.engine_limiter``, one per core): the event
loop never waits for an engine, and sessions queue for a slot rather than adding
threads that only add latency.  The audio a session has queued but not decoded is
bounded in bytes (:class:`AudioBudget`); receiving waits while it is spent, which
is the backpressure a fast sender feels.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import trio

from stt.engines.base import Hypothesis, Recognizer
from stt.errors import AsrEngineError, ChunkProcessorError
from stt.pcm import BYTES_PER_SAMPLE, DEFAULT_SAMPLE_RATE
from stt.server.memory import trim_heap
from stt.server.service import SessionPlan, SpeechService

log = logging.getLogger(__name__)

T = TypeVar("T")


class AudioBudget:
    """Bytes of audio received but not yet decoded; receiving waits while it is spent."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._used = 0
        self._refunded = trio.Event()

    async def spend(self, size: int) -> None:
        # One frame is always let through, however large, so nothing deadlocks.
        while self._used and self._used + size > self.limit:
            self._refunded = trio.Event()
            await self._refunded.wait()
        self._used += size

    def refund(self, size: int) -> None:
        self._used -= size
        self._refunded.set()


class Recognition:
    """The recognizer life cycle of one session, and the audio it has queued.

    ``background`` work (a file's transcription) takes an engine slot only when no live
    stream is waiting for one and another slot stays free: live streams come first.
    """

    def __init__(
        self, service: SpeechService, session_id: str, *, background: bool = False
    ) -> None:
        self._service = service
        self._session_id = session_id
        self._slot = (
            functools.partial(idle_slot, service.engine_limiter)
            if background
            else functools.partial(_foreground_slot, service.engine_limiter)
        )
        self._max_buffered_audio_s = service.settings.server.max_buffered_audio_s
        #: Until the welcome says otherwise, audio is taken to be at the default rate.
        self._bytes_per_second = float(BYTES_PER_SAMPLE * DEFAULT_SAMPLE_RATE)
        self.budget = AudioBudget(self._audio_bytes(self._max_buffered_audio_s))
        self._plan: SessionPlan | None = None
        self._recognizer: Recognizer | None = None

    def start(self, plan: SessionPlan) -> None:
        """The welcome was accepted: audio comes at the plan's rate, for the plan's model.

        The recognizer is made when the first audio needs it: making one can take a
        while (Vosk composes its graph), the welcome's answer need not wait for that,
        and a client that leaves without sending audio never costs one.
        """
        self._plan = plan
        self._bytes_per_second = float(BYTES_PER_SAMPLE * plan.recognition.sample_rate)
        self.budget.limit = self._audio_bytes(self._max_buffered_audio_s)

    def _audio_bytes(self, seconds: float) -> int:
        return int(seconds * self._bytes_per_second)

    @property
    def _engine(self) -> str:
        return self._plan.model.spec.engine if self._plan else ""

    async def decode(self, first: bytes, join_queued: Callable[[bytes], bytes]) -> list[Hypothesis]:
        """Decode ``first`` and, once a slot is held, whatever ``join_queued`` adds to it.

        Joining only after the wait means a session that waited for the engine decodes
        everything that arrived meanwhile in one call.
        """
        async with self._slot():
            recognizer = await self._ready_recognizer()
            pcm = join_queued(first)
            try:
                hypotheses, decode_s = await self._in_thread(
                    functools.partial(_timed, functools.partial(recognizer.accept_audio, pcm))
                )
            finally:
                self.budget.refund(len(pcm))
        audio_s = len(pcm) / self._bytes_per_second
        metrics = self._service.metrics
        metrics.audio_seconds.labels(self._engine).inc(audio_s)
        metrics.decode_rtf.labels(self._engine).observe(decode_s / audio_s)
        return hypotheses

    async def finish(self) -> Hypothesis:
        """End of audio: the final for what is not finalised yet."""
        async with self._slot():
            recognizer = await self._ready_recognizer()
            return await self._in_thread(recognizer.finish)

    async def release(self) -> None:
        """Free the recognizer, if one was made; safe to call more than once."""
        recognizer, self._recognizer = self._recognizer, None
        if recognizer is not None:
            async with self._service.engine_limiter:
                await trio.to_thread.run_sync(
                    functools.partial(_close_and_trim, recognizer), limiter=_SLOT_HELD
                )

    async def _ready_recognizer(self) -> Recognizer:
        """The session's recognizer, made at its first use; call with the engine slot held."""
        if self._recognizer is not None:
            return self._recognizer
        assert self._plan is not None, "audio before the welcome was accepted"
        make = functools.partial(self._plan.model.create_recognizer, self._plan.recognition)
        try:
            recognizer = await trio.to_thread.run_sync(make, limiter=_SLOT_HELD)
        except Exception as error:
            log.exception("session %s: recognizer failed", self._session_id)
            raise ChunkProcessorError(f"Failed to create processor: {error}") from error
        self._recognizer = recognizer
        return recognizer

    async def _in_thread(self, call: Callable[[], T]) -> T:
        """An engine call in a worker thread; call with the engine slot held."""
        try:
            return await trio.to_thread.run_sync(call, limiter=_SLOT_HELD)
        except Exception as error:
            log.exception("session %s: engine failed", self._session_id)
            raise AsrEngineError(f"{type(error).__name__}: {error}") from error


@contextlib.asynccontextmanager
async def _foreground_slot(limiter: trio.CapacityLimiter) -> AsyncIterator[None]:
    """A live stream's turn: first come, first served."""
    async with limiter:
        yield


@contextlib.asynccontextmanager
async def idle_slot(limiter: trio.CapacityLimiter) -> AsyncIterator[None]:
    """Background work's turn: a slot no live stream is waiting for, with another one left
    free (on a machine with more than one), so a stream that comes meanwhile finds one."""
    spare = 1 if limiter.total_tokens > 1 else 0
    while limiter.statistics().tasks_waiting or limiter.available_tokens <= spare:
        await trio.sleep(IDLE_SLOT_POLL_S)
    limiter.acquire_nowait()
    try:
        yield
    finally:
        limiter.release()


#: How often background work looks for an idle engine slot.
IDLE_SLOT_POLL_S = 0.01
#: Thread limiter for engine calls made while the task holds an engine slot
#: (``SpeechService.engine_limiter``, taken before the call's input is put together):
#: the thread itself must not wait for another one.
_SLOT_HELD = trio.CapacityLimiter(math.inf)


def _timed(call: Callable[[], T]) -> tuple[T, float]:
    """Run in the worker thread, so the time does not include waiting for a thread."""
    started = time.perf_counter()
    return call(), time.perf_counter() - started


def _close_and_trim(recognizer: Recognizer) -> None:
    """Free the engine's decoder, then hand the freed memory back to the system."""
    recognizer.close()
    trim_heap()
