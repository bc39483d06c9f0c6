"""Prometheus metrics: what an operator needs to see the server is healthy and keeping up."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

#: Decode time / audio time per engine call; above 1 the engine falls behind realtime.
RTF_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0)


class ServerMetrics:
    """One registry per server, so several servers in one process do not mix figures."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.active_sessions = Gauge(
            "sepia_stt_active_sessions",
            "Authenticated WebSocket sessions (what max_sessions counts).",
            registry=self.registry,
        )
        self.pending_connections = Gauge(
            "sepia_stt_pending_connections",
            "WebSocket connections not yet authenticated (what max_pending counts).",
            registry=self.registry,
        )
        self.refusals = Counter(
            "sepia_stt_refusals",
            "Connections and welcomes refused at a limit, by the limit.",
            ["reason"],
            registry=self.registry,
        )
        self.sessions = Counter(
            "sepia_stt_sessions",
            "Finished sessions by protocol and how they ended.",
            ["protocol", "outcome"],
            registry=self.registry,
        )
        self.audio_seconds = Counter(
            "sepia_stt_audio_seconds",
            "Seconds of audio decoded.",
            ["engine"],
            registry=self.registry,
        )
        self.decode_rtf = Histogram(
            "sepia_stt_decode_realtime_factor",
            "Decode time divided by audio time, per engine call.",
            ["engine"],
            buckets=RTF_BUCKETS,
            registry=self.registry,
        )
        self.warm_recognizers = Gauge(
            "sepia_stt_warm_recognizers",
            "Recognizers kept warm for the next session (freed after keep_warm_s unused).",
            registry=self.registry,
        )
        self.errors = Counter(
            "sepia_stt_errors", "Error messages sent, by name.", ["name"], registry=self.registry
        )
        self.auth_failures = Counter(
            "sepia_stt_auth_failures", "Failed authentications.", registry=self.registry
        )

        self.file_jobs = Gauge(
            "sepia_stt_file_jobs_running",
            "File transcriptions running (what [files] max_jobs counts).",
            registry=self.registry,
        )
        self.file_jobs_finished = Counter(
            "sepia_stt_file_jobs_finished",
            "Finished file transcriptions by how they ended.",
            ["outcome"],
            registry=self.registry,
        )
        self.file_audio_done = Gauge(
            "sepia_stt_file_audio_done_seconds",
            "Seconds of audio decoded so far by the running file transcriptions.",
            registry=self.registry,
        )
        self.file_audio_total = Gauge(
            "sepia_stt_file_audio_total_seconds",
            "Seconds of audio in the running file transcriptions (as their files state it): "
            "progress is done / total.",
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        """The text format ``GET /metrics`` serves."""
        return generate_latest(self.registry)
