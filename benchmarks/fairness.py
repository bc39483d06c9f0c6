"""What a long file upload costs live streams: final latency with and without one running.

    python -m benchmarks.fairness                      # Vosk, 3 realtime streams, 3 rounds
    python -m benchmarks.fairness --engine whisper --streams 2

The server serves one model.  Each round streams the benchmark speech on N
sessions at realtime pace twice: on a quiet server, and while a long recording
(the same speech repeated, ``--upload-s`` seconds) is being transcribed through
``POST /v1/audio/transcriptions``.  The upload starts first and is still running
when the streams end (checked).  Reported: each session's final latency (audioend
to its final) and how late each utterance's final came (lag), quiet vs. with the
upload, and how fast the upload went meanwhile.  Writes ``results/fairness-<engine>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import trio

from benchmarks.audio import seconds, speech_for
from benchmarks.ceiling import recognition_options, reference_run
from benchmarks.loadgen import LoadResult, run_load
from benchmarks.models import MODELS, load_in_process, write_settings
from benchmarks.resources import CpuMeter
from benchmarks.run import machine_info
from benchmarks.stats import summary
from tests.support.audio import wav_file
from tests.support.running import RunningServer, gauge

RESULTS = Path(__file__).resolve().parent / "results"
TOKEN = "test1234"


async def with_upload(url: str, recording: bytes, streams: Any) -> tuple[LoadResult, dict]:
    """Run ``streams()`` while the recording is transcribed; what the upload did meanwhile."""
    upload: dict[str, Any] = {}

    async def transcribe() -> None:
        # Hung up on once the streams are measured: the server then stops the job.
        async with httpx.AsyncClient(base_url=url, timeout=3600) as http:
            answer = await http.post(
                "/v1/audio/transcriptions",
                headers={"Authorization": f"Bearer {TOKEN}"},
                data={"model": "whisper-1", "response_format": "json"},
                files={"file": ("long.wav", recording)},
            )
        answer.raise_for_status()
        raise SystemExit("the upload ended before the streams: give a longer --upload-s")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(transcribe)
        server = _Url(url)
        with trio.fail_after(60):
            while await gauge(server, "sepia_stt_file_audio_done_seconds") <= 0:
                await trio.sleep(0.05)
        done_before = await gauge(server, "sepia_stt_file_audio_done_seconds")
        started = trio.current_time()
        load = await streams()
        elapsed = trio.current_time() - started
        done_after = await gauge(server, "sepia_stt_file_audio_done_seconds")
        upload["audio_per_wall_s_during_streams"] = round((done_after - done_before) / elapsed, 2)
        nursery.cancel_scope.cancel()
    with trio.fail_after(30):  # the server noticed the hang-up and stopped the job
        while await gauge(server, "sepia_stt_file_jobs_running"):
            await trio.sleep(0.1)
    return load, upload


class _Url:
    """What ``gauge`` needs of a server: its URL."""

    def __init__(self, url: str) -> None:
        self.http_url = url


def figures(loads: list[LoadResult], positions: tuple[float, ...]) -> dict[str, Any]:
    latencies = [s.final_latency_s for load in loads for s in load.sessions]
    lags = [lag for load in loads for s in load.sessions for lag in (s.lags(positions, 1.0) or [])]
    return {"final_latency_s": summary(latencies), "lag_s": summary(lags)}


async def bench(engine: str, streams: int, upload_s: float, rounds: int) -> dict[str, Any]:
    model = MODELS[engine]
    folder = Path(tempfile.mkdtemp(prefix="sepia-stt-fairness-"))
    settings = write_settings(folder, model, threads=os.cpu_count() or 1)
    speech = speech_for(engine)
    _, loaded = load_in_process(settings)
    reference = reference_run(loaded, speech, recognition_options(model.language))
    positions = reference.final_positions_s
    recording = wav_file(speech * max(1, round(upload_s / seconds(speech))))
    options = {"model": model.name}
    load_options: dict[str, Any] = {
        "sessions": streams, "pace": 1.0, "options": options, "probe_acks": False,
    }  # fmt: skip
    server = RunningServer(settings)
    quiet: list[LoadResult] = []
    loaded_runs: list[LoadResult] = []
    uploads: list[dict] = []
    try:
        # Warm up: one session and one small file.
        await run_load(server.http_url, speech, sessions=1, pace=None, options=options)
        for _ in range(rounds):
            with CpuMeter(server.process.pid) as quiet_meter:
                quiet.append(await run_load(server.http_url, speech, **load_options))
            with CpuMeter(server.process.pid) as meter:
                load, upload = await with_upload(
                    server.http_url,
                    recording,
                    lambda: run_load(server.http_url, speech, **load_options),
                )
            loaded_runs.append(load)
            upload["server_cores_quiet"] = round(
                quiet_meter.usage.cpu_s / quiet_meter.usage.wall_s, 2
            )
            upload["server_cores"] = round(meter.usage.cpu_s / meter.usage.wall_s, 2)
            upload["others_cores"] = round(meter.usage.others_cores, 2)
            uploads.append(upload)
    finally:
        server.stop()
    return {
        "engine": engine,
        "model": model.name,
        "streams": streams,
        "upload_audio_s": round(seconds(recording[44:]), 1),
        "rounds": rounds,
        "quiet": figures(quiet, positions),
        "with_upload": figures(loaded_runs, positions),
        "uploads": uploads,
        "machine": machine_info(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engine", choices=list(MODELS), default="vosk")
    parser.add_argument("--streams", type=int, default=3)
    parser.add_argument("--upload-s", type=float, default=1800.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    result = trio.run(bench, args.engine, args.streams, args.upload_s, args.rounds)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"fairness-{args.engine}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    quiet, loaded = result["quiet"], result["with_upload"]
    print(f"{args.engine}, {args.streams} realtime streams, {result['upload_audio_s']} s upload:")
    for name in ("final_latency_s", "lag_s"):
        print(
            f"  {name}: quiet p50 {quiet[name]['p50']:.2f} p95 {quiet[name]['p95']:.2f}; "
            f"with upload p50 {loaded[name]['p50']:.2f} p95 {loaded[name]['p95']:.2f}"
        )
    print(
        f"  upload meanwhile: {[u['audio_per_wall_s_during_streams'] for u in result['uploads']]}"
    )
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
