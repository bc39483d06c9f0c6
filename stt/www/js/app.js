// The test page: wires the settings, the audio sources, the session and the views together.
import { decodeAudioFile, FileStreamer } from "./audio-file.js";
import { FileTranscription, SubtitleLinks } from "./file-transcription.js";
import { LevelMeter } from "./level-meter.js";
import { MessageLog } from "./message-log.js";
import { Microphone, microphoneUnavailableReason } from "./microphone.js";
import { RecognitionSession } from "./recognition-session.js";
import { ResultsView } from "./results-view.js";
import { SettingsPanel } from "./settings-panel.js";
import { TranscriptView } from "./transcript-view.js";

const debug = new URLSearchParams(location.search).has("debug");
const $ = (id) => document.getElementById(id);

const settings = new SettingsPanel($("settings-form"));
const transcript = new TranscriptView($("transcript"));
const results = new ResultsView($("session-info"), $("result-list"));
const log = new MessageLog($("message-log"), $("log-count"));
const meter = new LevelMeter($("level-bar"));
const subtitles = new SubtitleLinks($("subtitle-links"), (message) => showStatus("error", message));

const STATUS_TEXT = {
  idle: "Ready",
  connecting: "Connecting…",
  active: "Listening – speak now",
  finishing: "Finishing – waiting for the last result…",
  done: "Done",
  error: "Error",
};

/**
 * The running recognition, or null: {kind: "microphone" | "file", session: RecognitionSession}
 * over the WebSocket, or {kind: "transcription", session: FileTranscription} over HTTP.
 */
let current = null;

/** The status line; `text` replaces the state's usual wording. */
function showStatus(state, detail = "", text = "") {
  const streaming = state === "active" && current?.kind === "file";
  $("status").dataset.state = state;
  $("status-text").textContent = text || (streaming ? "Streaming the file…" : STATUS_TEXT[state]);
  $("status-detail").textContent = detail;
  updateButtons(state);
}

/** Start/stop buttons: one source at a time, and no stopping while finishing. */
function updateButtons(state) {
  const kind = current?.kind;
  const other = (mine) => Boolean(kind) && kind !== mine; // something else is running
  const busy = state === "finishing";
  const noFile = !$("file-input").files.length;
  const micButton = $("mic-button");
  micButton.setAttribute("aria-pressed", String(kind === "microphone"));
  micButton.querySelector(".mic-label").textContent = kind === "microphone" ? "Stop" : "Start";
  micButton.disabled = Boolean(microphoneUnavailableReason()) || other("microphone") || busy;
  const fileButton = $("file-button");
  fileButton.textContent = kind === "file" ? "Stop streaming" : "Stream file";
  fileButton.disabled = noFile || other("file") || busy;
  const transcribeButton = $("transcribe-button");
  transcribeButton.textContent = kind === "transcription" ? "Stop transcribing" : "Transcribe file";
  transcribeButton.disabled = noFile || other("transcription");
}

/** The progress bar in place of the level meter: a fraction, null (no end known), or hidden. */
function showFileProgress(fraction) {
  const bar = $("file-progress");
  const shown = fraction !== undefined;
  bar.hidden = !shown;
  $("level-meter").hidden = shown;
  if (fraction === null) bar.removeAttribute("value");
  else if (shown) bar.value = fraction;
}

function startSession(kind, source) {
  let session;
  try {
    session = new RecognitionSession({
      connection: settings.connection,
      welcomeOptions: settings.welcomeOptions(),
      source,
      onLevel: (db) => meter.set(db),
      debug,
    });
  } catch (error) {
    current = null;
    return showStatus("error", `Check the server URL: ${error.message}`);
  }
  current = { kind, session };
  subtitles.withdraw();
  const { client } = session;
  client.addEventListener("message", ({ detail }) => log.add(detail.direction, detail.message));
  client.addEventListener("welcome", ({ detail }) => results.showSession(detail));
  client.addEventListener("result", ({ detail: result }) => {
    if (!result.isFinal) return transcript.partial(result.transcript);
    // The final after audioend is often empty in continuous mode: no card for that one.
    if (transcript.final(result.transcript)) results.addFinal(result);
  });
  session.addEventListener("statechange", ({ detail: { state, detail } }) => {
    if (state === "done" || state === "error") {
      current = null;
      meter.reset();
    }
    showStatus(state, detail);
  });
  transcript.startSession();
  return session.start();
}

async function toggleMicrophone() {
  if (current) return current.session?.finish();
  const microphone = new Microphone();
  await startSession("microphone", microphone);
  if (microphone.sampleRate) {
    log.note(`microphone at ${microphone.sampleRate} Hz, resampled to 16 kHz in an AudioWorklet`);
  }
}

async function toggleFileStreaming() {
  if (current) return current.session?.finish();
  const file = $("file-input").files[0];
  const speed = Number($("file-speed").value);
  current = { kind: "file", session: null }; // decoding
  showStatus("connecting", `Decoding ${file.name}…`);
  let decoded;
  try {
    decoded = await decodeAudioFile(file);
  } catch (error) {
    current = null;
    return showStatus("error", `Cannot decode ${file.name}: ${error.message || error.name}`);
  }
  const backlog = () => current?.session?.client.bufferedAmount ?? 0;
  const pace = speed ? `${speed}× realtime` : "as fast as possible";
  log.note(`${file.name}: ${decoded.seconds.toFixed(1)} s at 16 kHz, streamed ${pace}`);
  startSession("file", new FileStreamer(decoded.pcm, speed, backlog));
}

/** Uploads the file to POST /v1/audio/transcriptions; the text is streamed back. */
async function toggleFileTranscription() {
  if (current?.kind === "transcription") return current.session.abort();
  if (current) return;
  const file = $("file-input").files[0];
  const fields = settings.transcriptionFields();
  let job;
  try {
    job = new FileTranscription({ connection: settings.connection, fields, file });
  } catch (error) {
    return showStatus("error", `Check the server URL: ${error.message}`);
  }
  current = { kind: "transcription", session: job };
  subtitles.withdraw();
  transcript.startSession();
  let utterances = 0;
  job.addEventListener("progress", ({ detail }) => showTranscriptionProgress(file, fields, detail));
  job.addEventListener("delta", ({ detail }) => {
    if (!detail.text.trim()) return;
    utterances += 1;
    transcript.final(detail.text.trim());
  });
  // Server-sent events in the log; an error event has no type.
  job.addEventListener("event", ({ detail }) => log.add("in", { type: "error", ...detail }));
  log.note(`${file.name}: ${formatSize(file.size)} sent to ${job.url} (${describeFields(fields)})`);
  showTranscriptionProgress(file, fields, { phase: "uploading", loaded: 0, total: file.size });
  try {
    const text = await job.start();
    if (utterances === 0) transcript.final(text.trim()); // "(nothing recognized)" when empty
    current = null;
    showStatus("done", `${file.name} transcribed by the server: subtitles can be downloaded`);
    subtitles.offer(job);
  } catch (error) {
    current = null;
    if (error.name === "AbortError") showStatus("idle", "Transcription stopped.");
    else showStatus("error", error.message);
  } finally {
    showFileProgress(undefined);
  }
}

function showTranscriptionProgress(file, fields, { phase, loaded, total }) {
  if (current?.kind !== "transcription") return;
  if (phase === "uploading") {
    const fraction = total ? loaded / total : 0;
    const sent = `${formatSize(loaded)} of ${formatSize(total)}`;
    showStatus("connecting", `${file.name}: ${sent}`, `Uploading… ${Math.round(fraction * 100)} %`);
    showFileProgress(fraction);
  } else {
    showStatus("active", `${file.name} · ${describeFields(fields)}`, "Transcribing…");
    showFileProgress(null);
  }
}

function describeFields({ model, language }) {
  if (model !== "whisper-1") return `model ${model}`;
  return language ? `the default model for ${language}` : "the default model";
}

function formatSize(bytes) {
  return bytes < 1e6 ? `${Math.ceil(bytes / 1e3)} kB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

async function loadServerInfo() {
  const status = $("server-status");
  status.dataset.state = "checking";
  status.textContent = "Checking server…";
  try {
    const info = await settings.load();
    status.dataset.state = "online";
    status.textContent = `Server ${info.version ?? ""} · ${info.models.length} models`;
  } catch (error) {
    status.dataset.state = "offline";
    status.textContent = "Server not reachable";
    log.note(`GET /settings failed: ${error.message}`);
  }
}

function explainMicrophone() {
  const reason = microphoneUnavailableReason();
  $("secure-context-note").hidden = reason !== "insecure-context";
  $("unsupported-note").hidden = reason !== "unsupported";
}

$("mic-button").addEventListener("click", toggleMicrophone);
$("file-button").addEventListener("click", toggleFileStreaming);
$("transcribe-button").addEventListener("click", toggleFileTranscription);
$("file-input").addEventListener("change", () => updateButtons($("status").dataset.state));
$("clear-button").addEventListener("click", () => {
  transcript.clear();
  results.clear();
  subtitles.withdraw();
});
$("log-clear").addEventListener("click", () => log.clear());
settings.addEventListener("serverchange", loadServerInfo);

explainMicrophone();
showStatus("idle");
loadServerInfo();
