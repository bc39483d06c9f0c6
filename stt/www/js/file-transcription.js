// A file transcribed whole by the server, through its OpenAI-compatible HTTP endpoint
// POST /v1/audio/transcriptions (API.md, "Files: OpenAI's transcription API"), instead of
// decoded here and streamed over the WebSocket: the server decodes what FFmpeg reads, and
// answers with subtitles too.
//
//   const job = new FileTranscription({ connection, fields: { model: "whisper-1" }, file });
//   job.addEventListener("progress", (e) => e.detail); // {phase: "uploading", loaded, total},
//                                                      // then {phase: "transcribing"}
//   job.addEventListener("delta", (e) => e.detail.text); // an utterance, once the server has it
//   const text = await job.start();        // the whole text; rejects with a TranscriptionError,
//                                          // or an AbortError after job.abort()
//   const srt = await job.subtitles("srt"); // the same file again, as the server's SRT (a Blob)
//
// Events (CustomEvent, payload in `detail`) also include "event": every server-sent event's
// data, for the developer log. The text comes as server-sent events (stream=true). The upload
// goes through XMLHttpRequest rather than fetch: fetch reports no upload progress (and streams
// a request body only over HTTP/2), while XMLHttpRequest reports the upload's progress and
// hands over the response text as it arrives.
import { serverEndpoint } from "./sepia-stt-client.js";

const TRANSCRIPTIONS_PATH = "v1/audio/transcriptions";
/** Reason phrases of the endpoint's errors (API.md), for servers that send none (HTTP/2 never). */
const REASONS = {
  400: "Bad Request",
  401: "Unauthorized",
  404: "Not Found",
  408: "Request Timeout",
  413: "Payload Too Large",
  415: "Unsupported Media Type",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

/** A refusal or failure the server reported (OpenAI's error body), or no answer at all. */
export class TranscriptionError extends Error {
  /**
   * @param {string} message shown to the user
   * @param {{status?: number, type?: string, code?: string, param?: string}} [details]
   */
  constructor(message, { status = 0, type = "", code = "", param = "" } = {}) {
    super(message);
    this.name = "TranscriptionError";
    Object.assign(this, { status, type, code, param });
  }
}

export class FileTranscription extends EventTarget {
  /**
   * @param {object} config
   * @param {{serverUrl: string, clientId: string, accessToken: string}} config.connection
   * @param {{model: string, language?: string}} config.fields form fields beside the file
   * @param {File} config.file
   */
  constructor({ connection, fields, file }) {
    super();
    this.url = serverEndpoint(connection.serverUrl, TRANSCRIPTIONS_PATH);
    this.authorization = authorization(connection);
    this.fields = fields;
    this.file = file;
    this.request = null;
    this.aborter = new AbortController();
    this.subtitleRequests = new Map(); // format -> Promise<Blob>
  }

  /**
   * Uploads the file and reads the transcript as it is streamed back.
   * @returns {Promise<string>} the whole text
   */
  start() {
    return new Promise((resolve, reject) => {
      const request = new XMLHttpRequest();
      this.request = request;
      let settled = false;
      const settle = (outcome, value) => {
        if (settled) return;
        settled = true;
        outcome(value);
      };
      let read = 0; // characters of the response already parsed
      let text = null;
      let failure = null;
      const stream = new EventStreamParser((data) => {
        const event = parseJson(data);
        if (!event) return;
        this.emit("event", event);
        if (event.type === "transcript.text.delta") this.emit("delta", { text: event.delta });
        else if (event.type === "transcript.text.done") text = event.text;
        else if (event.error) failure = new TranscriptionError(event.error.message, event.error);
      });
      const readMore = () => {
        if (request.status !== 200) return; // an error: its JSON body is read whole at the end
        stream.push(request.responseText.slice(read));
        read = request.responseText.length;
      };

      request.upload.addEventListener("progress", ({ loaded, total }) => {
        if (!settled) this.emit("progress", { phase: "uploading", loaded, total });
      });
      request.upload.addEventListener("load", () => {
        if (!settled) this.emit("progress", { phase: "transcribing" });
      });
      request.addEventListener("progress", readMore);
      request.addEventListener("load", () => {
        if (request.status !== 200) {
          return settle(reject, httpError(request.status, request.statusText, request.response));
        }
        readMore();
        stream.end();
        if (failure) settle(reject, failure);
        else if (text === null) {
          settle(reject, new TranscriptionError("The transcript stream ended before the text."));
        } else settle(resolve, text);
      });
      request.addEventListener("error", () => {
        settle(reject, new TranscriptionError(`Cannot reach ${this.url}`));
      });
      request.addEventListener("abort", () => {
        settle(reject, new DOMException("The transcription was stopped.", "AbortError"));
      });

      request.open("POST", this.url);
      request.setRequestHeader("Authorization", this.authorization);
      request.setRequestHeader("Accept", "text/event-stream");
      request.send(this.form({ stream: "true" }));
    });
  }

  /**
   * The file's subtitles as the server makes them. Each format is another transcription of
   * the file on the server, so it is asked for once, when first wanted.
   * @param {"srt" | "vtt"} format
   * @returns {Promise<Blob>}
   */
  subtitles(format) {
    if (!this.subtitleRequests.has(format)) {
      const request = this.fetchSubtitles(format);
      this.subtitleRequests.set(format, request);
      request.catch(() => this.subtitleRequests.delete(format)); // a later click tries again
    }
    return this.subtitleRequests.get(format);
  }

  /** A name for the subtitle file: the audio file's, with the format's extension. */
  subtitleName(format) {
    const base = this.file.name.replace(/\.[^./]*$/, "") || "transcript";
    return `${base}.${format}`;
  }

  /** Stops the upload or transcription and any subtitle request; the server stops the job. */
  abort() {
    this.request?.abort();
    this.aborter.abort();
  }

  // -- internals ------------------------------------------------------------------------

  async fetchSubtitles(format) {
    const response = await fetch(this.url, {
      method: "POST",
      headers: { Authorization: this.authorization },
      body: this.form({ response_format: format }),
      signal: this.aborter.signal,
    });
    if (!response.ok) {
      throw httpError(response.status, response.statusText, await response.text());
    }
    return response.blob();
  }

  form(extra) {
    const form = new FormData();
    form.append("file", this.file, this.file.name);
    for (const [name, value] of Object.entries({ ...this.fields, ...extra })) {
      if (value) form.append(name, value);
    }
    return form;
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/**
 * Splits server-sent events as their text arrives in pieces; calls `onData` with each event's
 * data (its `data:` lines joined). Comments and other fields are skipped.
 */
export class EventStreamParser {
  /** @param {(data: string) => void} onData */
  constructor(onData) {
    this.onData = onData;
    this.buffer = "";
  }

  /** @param {string} text the next piece of the stream, cut anywhere */
  push(text) {
    this.buffer += text;
    // A "\r" at the end may be the first half of "\r\n": keep it until the next piece.
    const complete = this.buffer.endsWith("\r") ? this.buffer.length - 1 : this.buffer.length;
    const events = this.buffer.slice(0, complete).replace(/\r\n?/g, "\n").split("\n\n");
    this.buffer = events.pop() + this.buffer.slice(complete);
    for (const event of events) this.dispatch(event);
  }

  /** The stream ended: an event without its blank line still counts. */
  end() {
    const rest = this.buffer.replace(/\r\n?/g, "\n");
    this.buffer = "";
    if (rest.trim()) this.dispatch(rest);
  }

  dispatch(event) {
    const data = event
      .split("\n")
      .filter((line) => line.startsWith("data:"))
      .map((line) => line.slice(5).replace(/^ /, ""));
    if (data.length) this.onData(data.join("\n"));
  }
}

/**
 * The welcome's credentials as an HTTP header: Basic with the client id, so that a user's own
 * token works as in a welcome (any other client id falls back to the common token), or Bearer
 * with the token alone when there is no client id.
 */
function authorization({ clientId, accessToken }) {
  if (!clientId) return `Bearer ${accessToken}`;
  const bytes = new TextEncoder().encode(`${clientId}:${accessToken}`);
  return `Basic ${btoa(String.fromCharCode(...bytes))}`;
}

/** "HTTP 401 Unauthorized: Authentication failed: …" from OpenAI's error body. */
function httpError(status, statusText, body) {
  if (status === 0) return new TranscriptionError("No answer from the server.");
  const error = parseJson(body)?.error ?? {};
  const message = error.message || String(body ?? "").trim().slice(0, 200);
  const heading = ["HTTP", status, statusText || REASONS[status]].filter(Boolean).join(" ");
  return new TranscriptionError(message ? `${heading}: ${message}` : heading, {
    ...error,
    status,
  });
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** Download links for the subtitles of the last transcribed file, fetched on the first click. */
export class SubtitleLinks {
  /**
   * @param {HTMLElement} root hidden until a transcript is offered; holds an
   *   `<a href="#" data-format="srt">` (and "vtt") whose text is the link's label
   * @param {(message: string) => void} onError shows why a download failed
   */
  constructor(root, onError) {
    this.root = root;
    this.onError = onError;
    this.links = [...root.querySelectorAll("a[data-format]")];
    this.labels = new Map(this.links.map((link) => [link, link.textContent]));
    this.job = null;
    this.objectUrls = [];
    for (const link of this.links) {
      link.addEventListener("click", (event) => this.onClick(event, link));
    }
  }

  /** Shows the links for a finished transcription. @param {FileTranscription} job */
  offer(job) {
    this.withdraw();
    this.job = job;
    this.root.hidden = false;
  }

  /** Hides the links; a download still being made is stopped. */
  withdraw() {
    this.job?.abort();
    this.job = null;
    this.root.hidden = true;
    this.objectUrls.forEach((url) => URL.revokeObjectURL(url));
    this.objectUrls = [];
    for (const link of this.links) {
      link.href = "#";
      link.removeAttribute("download");
      link.removeAttribute("aria-busy");
      delete link.dataset.ready;
      link.textContent = this.labels.get(link);
    }
  }

  async onClick(event, link) {
    if (link.dataset.ready) return; // the file is here: the browser downloads it
    event.preventDefault();
    const job = this.job;
    if (!job || link.getAttribute("aria-busy")) return;
    const format = link.dataset.format;
    link.setAttribute("aria-busy", "true");
    link.textContent = `Preparing ${format.toUpperCase()}…`;
    try {
      const blob = await job.subtitles(format);
      if (job !== this.job) return;
      const url = URL.createObjectURL(blob);
      this.objectUrls.push(url);
      link.href = url;
      link.download = job.subtitleName(format);
      link.dataset.ready = "true";
      link.click();
    } catch (error) {
      if (job === this.job) this.onError(`${format.toUpperCase()} download: ${error.message}`);
    } finally {
      if (job === this.job) {
        link.removeAttribute("aria-busy");
        link.textContent = this.labels.get(link);
      }
    }
  }
}
