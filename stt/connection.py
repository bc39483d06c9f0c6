"""One WebSocket session on Trio: the thin adapter around :class:`SessionProtocol`.

Each connection is one nursery with these tasks:

* *receive*: socket -> protocol -> work channel (audio, audioend, the welcome);
* *recognize*: work channel -> engine in a worker thread -> protocol -> outbox;
* *send*: outbox -> socket, and the close;
* *heartbeat* and *deadlines*: pings, inactivity and the session's time limits;
* *drain*: on server shutdown, lets a running stream finish, then closes.

The channels are bounded and queued audio is limited in bytes, so a client that
sends faster than the engine decodes is slowed down at the socket instead of
filling memory, and a client that does not read its results stops its own
decoding.  Whichever task ends the session cancels the nursery; the recognizer
is released on every way out.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio
from quart import Websocket

from stt import protocol
from stt.admission import Place
from stt.engines.base import Recognizer
from stt.errors import (
    AsrEngineError,
    ChunkProcessorError,
    InternalError,
    ServerBusy,
    SttError,
)
from stt.memory import trim_heap
from stt.pcm import BYTES_PER_SAMPLE, DEFAULT_SAMPLE_RATE
from stt.service import SessionPlan, SpeechService
from stt.session import (
    CLOSE_GOING_AWAY,
    SHUTTING_DOWN,
    Action,
    Close,
    Decode,
    EndOfAudio,
    OpenRecognizer,
    Phase,
    Send,
    SessionProtocol,
)

log = logging.getLogger(__name__)

#: Work items (audio frames, audioend) queued ahead of the engine per session;
#: the byte budget (``max_buffered_audio_s``) is the bound that matters.
WORK_QUEUE_SIZE = 256
#: Messages queued for a client that reads slowly.
OUTBOX_SIZE = 64
#: Queued frames are joined up to this size for one engine call (about 2 s at 16 kHz).
MAX_DECODE_BYTES = 64 * 1024
#: How often session deadlines (welcome, idle, duration) are checked.
DEADLINE_CHECK_S = 0.5
#: Time allowed for the goodbye message when the server forces a session closed.
GOODBYE_TIMEOUT_S = 1.0


@dataclass(frozen=True, slots=True)
class Reply:
    """Messages the receive side produced (errors), kept in order behind earlier work."""

    outgoing: tuple[Send | Close, ...]


Work = OpenRecognizer | Decode | EndOfAudio | Reply
#: What the send task takes at once: one action list, so nothing can come between
#: (say) the ``response`` and the final that follows it.
Batch = tuple[Send | Close, ...]


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


class Connection:
    def __init__(
        self, websocket: Websocket, service: SpeechService, session_id: str, place: Place
    ) -> None:
        server = service.settings.server
        self._websocket = websocket
        self._service = service
        self._session_id = session_id
        #: Its place among pending connections, then sessions; freed as soon as the client
        #: has seen the end, before the recognizer is (that may wait for an engine thread).
        self._place = place
        self._protocol = SessionProtocol(
            timeout_s=server.timeout_s,
            now=trio.current_time(),
            welcome_timeout_s=server.welcome_timeout_s,
            max_session_s=server.max_session_s,
            max_frame_bytes=server.max_frame_bytes,
        )
        self._work_in, self._work_out = trio.open_memory_channel[Work](WORK_QUEUE_SIZE)
        self._outbox_in, self._outbox_out = trio.open_memory_channel[Batch](OUTBOX_SIZE)
        #: Until the welcome says otherwise, audio is taken to be at the default rate.
        self._bytes_per_second = float(BYTES_PER_SAMPLE * DEFAULT_SAMPLE_RATE)
        self._budget = AudioBudget(int(server.max_buffered_audio_s * self._bytes_per_second))
        #: Seconds a send may take before the client counts as gone (it does not read).
        self._send_timeout_s = server.timeout_s
        self._plan: SessionPlan | None = None
        self._recognizer: Recognizer | None = None
        self._engine = ""
        self._lookahead: Work | None = None
        self._outcome = "client closed"
        self._closed = False
        #: Last words when the session is ended from outside the send task.
        self._goodbye: list[Action] = []

    async def run(self) -> None:
        await self._websocket.accept()
        log.info("session %s opened from %s", self._session_id, self._address)
        try:
            async with trio.open_nursery() as nursery:
                self._cancel_scope = nursery.cancel_scope
                for loop in (
                    self._receive_loop,
                    self._recognize_loop,
                    self._heartbeat_loop,
                    self._deadline_loop,
                    self._drain_loop,
                ):
                    nursery.start_soon(self._guarded, loop)
                nursery.start_soon(self._send_loop)
        finally:
            with trio.CancelScope(shield=True):
                if not self._closed and self._service.drain_started.is_set():
                    self._outcome = "shutdown"
                    self._goodbye = self._protocol.fail(ServerBusy(SHUTTING_DOWN))
                if self._goodbye and not self._closed:
                    await self._say_goodbye(self._goodbye)
                self._service.release(self._place)
                await self._release_recognizer()
            self._service.metrics.sessions.labels(self._outcome).inc()
            log.info("session %s closed: %s", self._session_id, self._outcome)

    @property
    def _address(self) -> str:
        return self._place.address

    async def _guarded(self, loop: Callable[[], Any]) -> None:
        """Turn a bug in one task into an error message and a close, not a dropped socket."""
        try:
            await loop()
        except Exception:
            log.exception("session %s failed", self._session_id)
            self._end_now(
                self._protocol.fail(InternalError(f"Server error in session {self._session_id}."))
            )

    def _end_now(self, actions: list[Action]) -> None:
        """End the session without waiting for queued messages (deadlines, failures)."""
        if actions:
            self._goodbye = actions
            self._outcome = next((a.reason for a in actions if isinstance(a, Close)), "ended")
            self._cancel_scope.cancel()

    async def _queue_work(self, actions: list[Action]) -> None:
        """What the client sent, in order: audio to decode, and replies behind earlier work."""
        for action in actions:
            if isinstance(action, Send | Close):
                await self._work_in.send(Reply((action,)))
                continue
            if isinstance(action, Decode):
                await self._budget.spend(len(action.pcm))
            await self._work_in.send(action)

    async def _queue_outgoing(self, actions: list[Action]) -> None:
        batch = tuple(a for a in actions if isinstance(a, Send | Close))
        if batch:
            await self._outbox_in.send(batch)

    async def _say_goodbye(self, actions: list[Action]) -> None:
        """Send the last messages and close, directly: the send task is gone."""
        with trio.move_on_after(GOODBYE_TIMEOUT_S):
            try:
                for action in actions:
                    if isinstance(action, Send):
                        await self._send(action)
                    elif isinstance(action, Close):
                        await self._websocket.close(action.code, action.reason)
            except Exception:  # the client may be gone already; nothing left to tell
                log.debug("session %s: goodbye not delivered", self._session_id)
        self._closed = True

    # -- tasks -----------------------------------------------------------------

    async def _receive_loop(self) -> None:
        while True:
            data = await self._websocket.receive()
            now = trio.current_time()
            if isinstance(data, str):
                await self._queue_work(self._protocol.receive_text(data, now))
            elif data:  # Quart-Trio hands an empty binary frame over as None
                await self._queue_work(self._protocol.receive_bytes(data, now))

    async def _recognize_loop(self) -> None:
        while True:
            work = self._lookahead or await self._work_out.receive()
            self._lookahead = None
            if isinstance(work, Reply):
                await self._queue_outgoing(list(work.outgoing))
                continue
            if self._protocol.phase is Phase.CLOSED:
                continue  # the session is closing: its last messages may still be queued
            try:
                if isinstance(work, OpenRecognizer):
                    actions = await self._open(work)
                elif isinstance(work, Decode):
                    actions = await self._decode(work.pcm)
                else:
                    actions = await self._end_audio(work.msg_id)
            except SttError as error:
                actions = self._protocol.fail(error)
            await self._queue_outgoing(actions)
            if isinstance(work, EndOfAudio):
                await self._finish()

    async def _finish(self) -> None:
        """The last final is on its way and no audio may follow: the session has ended for its
        client, who may keep the socket open a while (SEPIA clients close it on the final).
        Its place and its recognizer are freed now, not when the socket closes."""
        self._service.release(self._place)
        await self._release_recognizer()

    async def _send_loop(self) -> None:
        async for batch in self._outbox_out:
            for outgoing in batch:
                with trio.move_on_after(self._send_timeout_s) as sending:
                    if isinstance(outgoing, Close):
                        await self._close(outgoing)
                        return
                    await self._send(outgoing)
                if sending.cancelled_caught:
                    log.warning("session %s: client stopped reading", self._session_id)
                    self._outcome = "client not reading"
                    self._cancel_scope.cancel()
                    return

    async def _send(self, send: Send) -> None:
        if send.error is not None:
            self._service.metrics.errors.labels(send.error).inc()
        if send.completes:
            self._outcome = "completed"
        message = protocol.stamp(send.message, self._service.ids)
        await self._websocket.send(protocol.encode(message))

    async def _close(self, close: Close) -> None:
        self._closed = True
        if close.code != CLOSE_GOING_AWAY:
            self._outcome = close.reason
        await self._websocket.close(close.code, close.reason)
        self._cancel_scope.cancel()

    async def _heartbeat_loop(self) -> None:
        interval = self._service.settings.server.heartbeat_s
        while True:
            await trio.sleep(interval)
            actions = self._protocol.heartbeat(trio.current_time())
            if any(isinstance(a, Close) for a in actions):
                self._end_now(actions)
                return
            with contextlib.suppress(trio.WouldBlock):  # a client that does not read needs no ping
                self._outbox_in.send_nowait(tuple(a for a in actions if isinstance(a, Send)))

    async def _deadline_loop(self) -> None:
        while True:
            await trio.sleep(DEADLINE_CHECK_S)
            self._end_now(self._protocol.expire(trio.current_time()))

    async def _drain_loop(self) -> None:
        await self._service.drain_started.wait()
        # In order behind what is queued: a stream's final goes out before the close.
        await self._queue_outgoing(self._protocol.drain())

    # -- recognizer ---------------------------------------------------------------

    def _join_queued_audio(self, pcm: bytes) -> bytes:
        """``pcm`` and the audio frames queued behind it, up to one engine call's worth.

        Called once the engine slot is held, so a session that waited for the
        engine decodes everything that arrived meanwhile in one call, rather than
        spending its turn on the frame that was there when it started waiting.
        """
        chunks = [pcm]
        size = len(pcm)
        while size < MAX_DECODE_BYTES:
            try:
                following = self._work_out.receive_nowait()
            except trio.WouldBlock:
                break
            if not isinstance(following, Decode):
                self._lookahead = following
                break
            chunks.append(following.pcm)
            size += len(following.pcm)
        return b"".join(chunks) if len(chunks) > 1 else pcm

    async def _open(self, request: OpenRecognizer) -> list[Action]:
        service = self._service
        identity = await service.authenticate(request.welcome, self._place)
        plan = service.plan_session(request.options)
        service.admit(self._place, identity)
        self._engine = plan.model.spec.engine
        self._bytes_per_second = BYTES_PER_SAMPLE * plan.recognition.sample_rate
        self._budget.limit = int(
            service.settings.server.max_buffered_audio_s * self._bytes_per_second
        )
        log.info("session %s: options %s", self._session_id, plan.info["options"])
        # The recognizer is made when the first audio needs it: making one can take a
        # while (Vosk composes its graph), the ack need not wait for that, and a client
        # that leaves without sending audio never costs one.
        self._plan = plan
        return self._protocol.recognizer_opened(request, plan.info, plan.effective)

    async def _ready_recognizer(self) -> Recognizer:
        """The session's recognizer, made at its first use; call with the engine slot held."""
        if self._recognizer is not None:
            return self._recognizer
        assert self._plan is not None, "audio before the welcome was accepted"
        try:
            recognizer = await trio.to_thread.run_sync(
                self._plan.model.create_recognizer, self._plan.recognition, limiter=_SLOT_HELD
            )
        except Exception as error:
            log.exception("session %s: recognizer failed", self._session_id)
            raise ChunkProcessorError(f"Failed to create processor: {error}") from error
        self._recognizer = recognizer
        return recognizer

    async def _decode(self, first: bytes) -> list[Action]:
        async with self._service.engine_limiter:
            recognizer = await self._ready_recognizer()
            pcm = self._join_queued_audio(first)
            try:
                hypotheses, decode_s = await self._in_thread(_timed, recognizer.accept_audio, pcm)
            finally:
                self._budget.refund(len(pcm))
        audio_s = len(pcm) / self._bytes_per_second
        metrics = self._service.metrics
        metrics.audio_seconds.labels(self._engine).inc(audio_s)
        metrics.decode_rtf.labels(self._engine).observe(decode_s / audio_s)
        return self._protocol.results(hypotheses)

    async def _end_audio(self, msg_id: int) -> list[Action]:
        async with self._service.engine_limiter:
            recognizer = await self._ready_recognizer()
            last = await self._in_thread(recognizer.finish)
        return self._protocol.audio_ended(msg_id, last)

    async def _in_thread(self, call: Callable[..., Any], *args: Any) -> Any:
        """An engine call in a worker thread; call with the engine slot held."""
        try:
            return await trio.to_thread.run_sync(call, *args, limiter=_SLOT_HELD)
        except Exception as error:
            log.exception("session %s: engine failed", self._session_id)
            raise AsrEngineError(f"{type(error).__name__}: {error}") from error

    async def _release_recognizer(self) -> None:
        recognizer, self._recognizer = self._recognizer, None
        if recognizer is not None:
            async with self._service.engine_limiter:
                await trio.to_thread.run_sync(_close_and_trim, recognizer, limiter=_SLOT_HELD)


#: Thread limiter for engine calls made while the task holds an engine slot
#: (``SpeechService.engine_limiter``, taken before the call's input is put together):
#: the thread itself must not wait for another one.
_SLOT_HELD = trio.CapacityLimiter(math.inf)


def _timed(call: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """Run in the worker thread, so the time does not include waiting for a thread."""
    started = time.perf_counter()
    return call(*args), time.perf_counter() - started


def _close_and_trim(recognizer: Recognizer) -> None:
    """Free the engine's decoder, then hand the freed memory back to the system."""
    recognizer.close()
    trim_heap()
