"""From raw runs to figures: the JSON entries, the target checks and the README table."""

from __future__ import annotations

from typing import Any

from benchmarks import loadgen
from benchmarks.ceiling import CeilingResult, Reference
from benchmarks.loadgen import LoadResult
from benchmarks.resources import RunUsage
from benchmarks.stats import slope, summary

#: Vosk target: the lag of realtime streams.
LAG_MAX_S = 0.3
#: Realtime streams keep up while their lag grows by at most this: along the stream,
#: and above the lag of a single stream.
LAG_GROWTH_MAX_S = 0.3
THROUGHPUT_RATIO_MIN = 0.95
ACK_P95_MAX_S = 0.010
#: Final latency may exceed the in-process ``finish()`` p95 by this much.
FINAL_MARGIN_S = 0.100
PING_P99_MAX_S = 0.020
#: An extra session may cost this much more memory than an extra in-process recognizer.
MEMORY_FACTOR_MAX = 1.10
RSS_RETURN_MAX = 0.05

Figures = dict[str, Any]


def ceiling_figures(ceiling: CeilingResult) -> Figures:
    return {
        "throughput": ceiling.throughput,
        "wall_s": ceiling.wall_s,
        "cpu_per_audio_s": ceiling.cpu_s / ceiling.audio_s,
        "finish_s": summary(ceiling.finish_s),
        "rss_growth_mb": ceiling.rss_peak_mb - ceiling.rss_before_mb,
        "others_cores": ceiling.others_cores,
    }


def ceiling_around(before: Figures, after: Figures) -> Figures:
    """The ceiling for a server run between two ceiling runs: their mean.

    The host's speed drifts by a few percent over seconds; the mean of the runs
    on either side cancels a steady drift.  ``finish_s`` (the limit of the final
    latency) is the larger of the two.
    """
    figures: Figures = {
        key: (value + after[key]) / 2 for key, value in before.items() if key != "finish_s"
    }
    figures["finish_s"] = max(before["finish_s"], after["finish_s"], key=lambda s: s["p95"])
    figures["throughputs"] = [before["throughput"], after["throughput"]]
    return figures


def load_figures(load: LoadResult, usage: RunUsage, reference: Reference) -> Figures:
    """A server run: latencies, lag (realtime runs only), server CPU and memory."""
    figures = loadgen.report(load)
    if load.pace:
        figures |= lag_figures(load, reference)
    same = sum(s.transcript == reference.transcript for s in load.sessions)
    figures["same_transcript_as_in_process"] = same / len(load.sessions)
    figures["server"] = {
        "cpu_per_audio_s": usage.cpu.cpu_s / (len(load.sessions) * load.audio_s),
        "rss_before_mb": usage.rss_before_mb,
        "rss_peak_mb": usage.rss_peak_mb,
        "rss_after_mb": usage.rss_after_mb,
        "rss_growth_mb": usage.rss_peak_mb - usage.rss_before_mb,
        "client_cores": usage.cpu.client_cores,
        "others_cores": usage.cpu.others_cores,
    }
    return figures


def lag_figures(load: LoadResult, reference: Reference) -> Figures:
    """Lag of the sentence finals behind the moment their audio was spoken."""
    assert load.pace is not None
    paired = [
        lags
        for session in load.sessions
        if (lags := session.lags(reference.final_positions_s, load.pace)) is not None
    ]
    return {
        "lag_s": summary([lag for lags in paired for lag in lags]),
        "lag_growth_s": max((lags[-1] - lags[0] for lags in paired if lags), default=None),
        "unpaired_sessions": len(load.sessions) - len(paired),
    }


def keeps_up(realtime: Figures, alone_lag_s: float) -> bool | None:
    """Lag did not grow: not along the streams, and not beyond the lag of one stream alone.

    None when the finals could not be paired with the reference.
    """
    if realtime["unpaired_sessions"] or realtime["lag_s"]["max"] is None:
        return None
    return (
        realtime["lag_s"]["max"] <= alone_lag_s + LAG_GROWTH_MAX_S
        and realtime["lag_growth_s"] <= LAG_GROWTH_MAX_S
    )


def summarize(result: Figures) -> None:
    """Add memory, capacity and target figures to an engine's result (in place)."""
    points = result["points"]
    sessions = [p["sessions"] for p in points]
    server = result["server"]
    result["memory"] = {
        "server_mb_per_session": slope(
            sessions, [p["max_pace"]["server"]["rss_growth_mb"] for p in points]
        ),
        "in_process_mb_per_recognizer": slope(
            sessions, [p["ceiling"]["rss_growth_mb"] for p in points]
        ),
        # Against the server before its first session: a server left alone for keep_warm_s
        # has freed the recognizer it kept warm, so all it holds more is what leaked.
        "rss_return": server["rss_released_mb"] / server["rss_cold_mb"] - 1,
        # Right after the last session, with the warm recognizer still kept, against the
        # server after its warm-up session (one warm recognizer too).
        "rss_return_warm": server["rss_end_mb"] / server["rss_start_mb"] - 1,
    }
    alone_lag_s = points[0]["realtime"]["lag_s"]["max"] or 0.0
    fitting = [p["sessions"] for p in points if keeps_up(p["realtime"], alone_lag_s)]
    result["realtime_streams_that_keep_up"] = max(fitting, default=0)
    alone = points[0]["realtime"]["first_partial_s"]["p50"]
    result["first_partial"] = {
        "realtime_p50_s": alone,
        "sessions": points[0]["sessions"],
        # The audio the engine needs before it can say anything: the rest is latency.
        "reference_position_s": result["reference"]["first_partial_s"],
    }
    # The issue sets targets for the Vosk model only; Whisper is reported, not judged.
    result["targets"] = targets(result) if result["engine"] == "vosk" else []


def targets(result: Figures) -> list[Figures]:
    """The issue's targets that this run measured, each with its value and whether it is met."""
    by_sessions = {p["sessions"]: p for p in result["points"]}
    checks: list[Figures] = []

    def check(name: str, value: float | None, limit: float, *, at_most: bool = True) -> None:
        met = value is not None and (value <= limit if at_most else value >= limit)
        checks.append({"target": name, "value": value, "limit": limit, "met": met})

    if 4 in by_sessions:
        ratio = by_sessions[4]["max_pace"]["throughput_ratio"]
        check("throughput N=4 max pace / ceiling", ratio, THROUGHPUT_RATIO_MIN, at_most=False)
        ping = by_sessions[4]["max_pace"]["ping_s"]["p99"]
        check("GET /ping p99 (s), N=4 max pace", ping, PING_P99_MAX_S)
    check("welcome->ack p95 (s), idle server", result["server"]["ack_idle_s"]["p95"], ACK_P95_MAX_S)
    if 3 in by_sessions:
        point = by_sessions[3]
        limit = point["ceiling"]["finish_s"]["p95"] + FINAL_MARGIN_S
        check(
            "final latency p95 (s), N=3 realtime",
            point["realtime"]["final_latency_s"]["p95"],
            limit,
        )
        check("lag max (s), N=3 realtime", point["realtime"]["lag_s"]["max"], LAG_MAX_S)
    memory = result["memory"]
    in_process = memory["in_process_mb_per_recognizer"]
    if in_process is not None:
        check(
            "RSS per extra session (MB)",
            memory["server_mb_per_session"],
            max(in_process, 0.0) * MEMORY_FACTOR_MAX,
        )
    check(
        "RSS after all sessions closed, left alone, vs start",
        memory["rss_return"],
        RSS_RETURN_MAX,
    )
    return checks


def table(result: Figures) -> str:
    """The README table: one row per session count."""
    lines = [
        "| N | throughput server / ceiling (x realtime) | ratio "
        "| CPU s per audio s server / in-process | /ping p99 max pace | ack p95 "
        "| first partial p50 | final latency p95 | lag max | RSS +MB | others' CPU (cores) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in result["points"]:
        fast, realtime, ceiling = p["max_pace"], p["realtime"], p["ceiling"]
        others = max(
            ceiling["others_cores"], *(r["server"]["others_cores"] for r in (fast, realtime))
        )
        lines.append(
            f"| {p['sessions']} | {fast['throughput']:.2f} / {ceiling['throughput']:.2f} "
            f"| {fast['throughput_ratio']:.2f} "
            f"| {fast['server']['cpu_per_audio_s']:.3f} / {ceiling['cpu_per_audio_s']:.3f} "
            f"| {ms(fast['ping_s']['p99'])} | {ms(realtime['ack_s']['p95'])} "
            f"| {seconds(realtime['first_partial_s']['p50'])} "
            f"| {seconds(realtime['final_latency_s']['p95'])} "
            f"| {seconds(realtime['lag_s']['max'])} "
            f"| {fast['server']['rss_growth_mb']:.0f} | {others:.2f} |"
        )
    return "\n".join(lines)


def target_lines(result: Figures) -> str:
    return "\n".join(
        f"{'MET   ' if t['met'] else 'MISSED'} {t['target']}: {number(t['value'])} "
        f"(limit {number(t['limit'])})"
        for t in result["targets"]
    )


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f} ms"


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
