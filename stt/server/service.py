"""What all sessions share: loaded models, the decode limiter, auth, limits, metrics."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, replace
from typing import Any

import trio

from stt import PROTOCOL_VERSION
from stt.actions import SessionOptions
from stt.catalog.specs import ModelCatalog, ModelSpec
from stt.engines import engine_class
from stt.engines.base import Engine, EngineConfig, LoadedModel, RecognitionOptions
from stt.errors import (
    SHUTTING_DOWN,
    AuthenticationFailed,
    EngineNotFound,
    ServerBusy,
    TooManyJobs,
)
from stt.sepia.protocol import MessageIds
from stt.server.addresses import limit_key
from stt.server.admission import Admission, Identity, Place, Refused
from stt.server.auth import Authenticator, AuthThrottle
from stt.server.memory import trim_heap
from stt.server.metrics import ServerMetrics
from stt.settings import Settings, SettingsError

log = logging.getLogger(__name__)

#: Warm recognizers are checked for idleness every ``keep_warm_s / 4``, within these bounds.
IDLE_CHECK_MIN_S = 0.5
IDLE_CHECK_MAX_S = 30.0


class SpeechService:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.catalog = ModelCatalog(settings.models)
        self.ids = MessageIds()
        self.authenticator = Authenticator(settings.auth)
        #: Threads that run engine work at once: ``decode_threads``, or one per core.
        self.engine_threads = settings.server.decode_threads or os.cpu_count() or 1
        #: Engine work (making, feeding and freeing recognizers) beyond the core count only
        #: adds latency, and every extra thread keeps its own malloc arena: sessions queue here.
        self.engine_limiter = trio.CapacityLimiter(self.engine_threads)
        #: Hashed tokens cost a key derivation each: a burst of welcomes must not starve decoding.
        self.auth_limiter = trio.CapacityLimiter(1)
        config = EngineConfig(
            speaker_model=settings.speaker_model, log_level=settings.server.log_level
        )
        try:
            self._engines: dict[str, Engine] = {
                name: engine_class(name)(config) for name in settings.engine_names
            }
        except EngineNotFound as error:
            raise SettingsError(
                error.message.removeprefix("Failed to create processor: ")
            ) from None
        self._models: dict[str, LoadedModel] = {}
        self.metrics = ServerMetrics()
        self.metrics.warm_recognizers.set_function(self._warm_count)
        self.throttle = AuthThrottle(
            base_delay_s=settings.server.auth_failure_delay_s,
            max_failures=settings.server.auth_max_failures,
        )
        self.admission = Admission(settings.server)
        self.metrics.active_sessions.set_function(lambda: self.admission.sessions)
        self.metrics.pending_connections.set_function(lambda: self.admission.pending)
        #: File transcriptions running (``[files] max_jobs``).
        self.file_jobs = 0
        self.metrics.file_jobs.set_function(lambda: self.file_jobs)
        #: Set on SIGTERM/SIGINT: no new sessions, running ones finish their stream.
        self.drain_started = trio.Event()
        self._all_closed = trio.Event()

    # -- admission ---------------------------------------------------------------

    @property
    def accepting(self) -> bool:
        """Models loaded, not draining, room for a session: what ``/ready`` reports."""
        return self.ready and not self.drain_started.is_set() and self.admission.has_room

    def open_connection(self, address: str, now: float) -> Place:
        """A place for a new connection until it authenticates; ``Refused`` beyond the limits.

        While draining, a connection is still let in (within the limits): its session
        tells it ``ServerBusy`` in the protocol, which a SEPIA client shows, and closes.
        """
        try:
            return self.admission.open(address, now)
        except Refused as refusal:
            self.metrics.refusals.labels(refusal.reason).inc()
            raise

    async def authenticate(
        self, client_id: str | None, access_token: str | None, address: str
    ) -> Identity:
        """Who the credentials prove; ``AuthenticationFailed`` after a throttled delay.

        The check runs in a thread (hashed tokens cost a key derivation), one at a
        time, so a burst of welcomes cannot starve decoding.
        """
        # Failures count per client: an IPv6 client's whole /64 is one.
        client = limit_key(address)
        if self.throttle.is_refused(client, time.monotonic()):
            self.metrics.auth_failures.inc()
            raise AuthenticationFailed(
                "Too many failed authentications from this address. Try again later."
            )
        identity = await trio.to_thread.run_sync(
            self.authenticator.check,
            client_id,
            access_token,
            limiter=self.auth_limiter,
        )
        if identity is not None:
            return identity
        self.metrics.auth_failures.inc()
        delay = self.throttle.delay_after_failure(client, time.monotonic())
        # Never log the token itself.
        log.warning("authentication failed for client id %r from %s", client_id, address)
        await trio.sleep(delay)
        raise AuthenticationFailed("Authentication failed: wrong client id or token.")

    def admit(self, place: Place, identity: Identity) -> None:
        """Count an authenticated connection as a session; ``Refused`` when there is no room."""
        try:
            if self.drain_started.is_set():
                raise Refused("draining", SHUTTING_DOWN)
            self.admission.authenticate(place, identity)
        except Refused as refusal:
            self.metrics.refusals.labels(refusal.reason).inc()
            raise

    def release(self, place: Place) -> None:
        """A connection has ended for its client: its place is free at once."""
        self.admission.release(place)
        self._check_drained()

    def start_draining(self) -> None:
        self.drain_started.set()
        self._check_drained()

    def _check_drained(self) -> None:
        admission = self.admission
        if self.drain_started.is_set() and not (
            admission.sessions or admission.pending or self.file_jobs
        ):
            self._all_closed.set()

    def start_file_job(self) -> None:
        """A place for a file transcription; ``ServerBusy`` while draining, ``TooManyJobs``
        when ``[files] max_jobs`` are running."""
        if self.drain_started.is_set():
            self.metrics.refusals.labels("draining").inc()
            raise ServerBusy(SHUTTING_DOWN)
        if self.file_jobs >= self.settings.files.max_jobs:
            self.metrics.refusals.labels("max_jobs").inc()
            raise TooManyJobs(
                f"The server is transcribing {self.file_jobs} files, its limit. "
                "Try again in a moment."
            )
        self.file_jobs += 1

    def end_file_job(self) -> None:
        self.file_jobs -= 1
        self._check_drained()

    async def wait_all_closed(self) -> None:
        await self._all_closed.wait()

    def load_models(self) -> None:
        """Load every configured model once, before serving; a failure names the model."""
        for spec in self.settings.models:
            if spec.name in self._models:
                continue
            log.info("loading model %s (%s) from %s", spec.name, spec.engine, spec.path)
            try:
                self._models[spec.name] = self._engines[spec.engine].load_model(spec)
            except Exception as error:
                where = f"model {spec.name!r} ({spec.engine}) at {spec.path}"
                raise SettingsError(f"{where} cannot be loaded: {error}") from error

    # -- memory between sessions ---------------------------------------------------

    async def release_idle_recognizers(self) -> None:
        """Forever: free recognizers kept warm that no session took for ``keep_warm_s``."""
        keep_s = self.settings.server.keep_warm_s
        period = min(max(keep_s / 4, IDLE_CHECK_MIN_S), IDLE_CHECK_MAX_S)
        while True:
            await trio.sleep(period)
            await trio.to_thread.run_sync(self._release_idle, keep_s, limiter=self.engine_limiter)

    def _release_idle(self, keep_s: float) -> None:
        now = time.monotonic()
        freed = sum(model.release_idle(keep_s, now) for model in self._models.values())
        if freed:
            trim_heap()
            log.info("freed %d recognizer(s) unused for %g s", freed, keep_s)

    def _warm_count(self) -> int:
        return sum(model.warm_count() for model in self._models.values())

    @property
    def ready(self) -> bool:
        return len(self._models) == len(self.settings.models)

    def plan_session(self, options: SessionOptions) -> SessionPlan:
        """Model and options for a welcome; raises ``ModelNotFound``."""
        spec = self.catalog.select(
            model=options.model, language=options.language, task=options.task
        )
        model = self._models[spec.name]
        language = self.catalog.session_language(spec, options.language)
        recognition = replace(options.recognition, language=language)
        effective = model.effective_options(recognition)
        active = active_options(spec, language, options, effective)
        return SessionPlan(model, recognition, effective, {**self.info(), "options": active})

    def info(self) -> dict[str, Any]:
        """The ``/settings`` object; the welcome ack sends it too, plus ``options``."""
        models = self.settings.models
        return {
            "version": PROTOCOL_VERSION,
            "engine": self.settings.engine,
            "models": [m.name for m in models],
            "languages": [m.language for m in models],
            "modelProperties": [dict(m.properties) for m in models],
            "features": self._features(),
        }

    def _features(self) -> list[str] | dict[str, Any]:
        if not self.settings.is_dynamic:
            return next(iter(self._engines.values())).features()
        return {
            "basic": "engine_hot_swap",
            **{name: engine.features() for name, engine in self._engines.items()},
        }


@dataclass(frozen=True, slots=True)
class SessionPlan:
    """What a welcome resolved to."""

    model: LoadedModel
    #: The client's options with the session language filled in.
    recognition: RecognitionOptions
    #: Engine options as they really apply.
    effective: dict[str, Any]
    #: The welcome ack's ``info``: ``/settings`` plus the active ``options``.
    info: dict[str, Any]


def active_options(
    spec: ModelSpec, language: str, options: SessionOptions, effective: dict[str, Any]
) -> dict[str, Any]:
    """``info.options`` of the welcome ack: what really applies to the session."""
    rate = options.recognition.sample_rate
    return {
        "language": language,
        "task": spec.task,
        "model": spec.name,
        "engine": spec.engine,
        "samplerate": int(rate) if rate.is_integer() else rate,
        "optimizeFinalResult": options.optimize_final,
        "continuous": options.continuous,
        "interimResults": options.interim_results,
        **effective,
    }
