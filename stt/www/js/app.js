// The test page: wires the settings, the audio sources, the session and the views together.
import { decodeAudioFile, FileStreamer } from "./audio-file.js";
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

const STATUS_TEXT = {
  idle: "Ready",
  connecting: "Connecting…",
  active: "Listening – speak now",
  finishing: "Finishing – waiting for the last result…",
  done: "Done",
  error: "Error",
};

/** The running recognition: {kind: "microphone" | "file", session}, or null. */
let current = null;

function showStatus(state, detail = "") {
  $("status").dataset.state = state;
  $("status-text").textContent =
    state === "active" && current?.kind === "file" ? "Streaming the file…" : STATUS_TEXT[state];
  $("status-detail").textContent = detail;
  updateButtons(state);
}

/** Start/stop buttons: one source at a time, and no stopping while finishing. */
function updateButtons(state) {
  const kind = current?.kind;
  const busy = state === "finishing";
  const micButton = $("mic-button");
  micButton.setAttribute("aria-pressed", String(kind === "microphone"));
  micButton.querySelector(".mic-label").textContent = kind === "microphone" ? "Stop" : "Start";
  micButton.disabled = Boolean(microphoneUnavailableReason()) || kind === "file" || busy;
  const fileButton = $("file-button");
  fileButton.textContent = kind === "file" ? "Stop streaming" : "Stream file";
  fileButton.disabled = !$("file-input").files.length || kind === "microphone" || busy;
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
$("file-input").addEventListener("change", () => updateButtons($("status").dataset.state));
$("clear-button").addEventListener("click", () => {
  transcript.clear();
  results.clear();
});
$("log-clear").addEventListener("click", () => log.clear());
settings.addEventListener("serverchange", loadServerInfo);

explainMicrophone();
showStatus("idle");
loadServerInfo();
