// SEPIA STT protocol client for the browser: one WebSocket session per instance.
//
//   const client = new SepiaSttClient({ serverUrl: "http://localhost:20741", accessToken: "test1234" });
//   client.addEventListener("result", (e) => console.log(e.detail.transcript, e.detail.isFinal));
//   const info = await client.connect({ language: "en-US" });  // welcome -> ack
//   client.sendAudio(int16Frame); ...; client.endAudio();        // -> last final, then "done"
//
// Events (CustomEvent, payload in `detail`): "welcome" (ack info), "result" (result message),
// "error" (error message: {code, name, message}), "done" (last final after audioend),
// "close" ({code, reason}), and "message" ({direction: "in" | "out", message}) for every
// message sent or received, with binary frames as {binaryBytes}.
// Dependency-free; the protocol is described in the server's API.md.

/** Message ids run 1..999999 and wrap, like the SEPIA clients'. */
export const MAX_MSG_ID = 999999;
const SOCKET_PATH = "/socket";
/** What the welcome asks for unless told otherwise: what the page's audio sources produce. */
const DEFAULT_SAMPLE_RATE = 16000;
const NORMAL_CLOSURE = 1000;

/** The WebSocket URL for a server base URL: http -> ws, https -> wss, path + "/socket". */
export function socketUrl(serverUrl) {
  const url = new URL(serverUrl);
  url.protocol = { "http:": "ws:", "https:": "wss:" }[url.protocol] ?? url.protocol;
  url.hash = "";
  const path = url.pathname.replace(/\/+$/, "");
  url.pathname = path.endsWith(SOCKET_PATH) ? path : path + SOCKET_PATH;
  return url.href;
}

/** An HTTP endpoint of the server, e.g. serverEndpoint(base, "settings"). */
export function serverEndpoint(serverUrl, name) {
  const url = new URL(serverUrl);
  url.protocol = { "ws:": "http:", "wss:": "https:" }[url.protocol] ?? url.protocol;
  url.hash = "";
  url.search = "";
  url.pathname = url.pathname.replace(/\/+$/, "").replace(/\/socket$/, "") + "/" + name;
  return url.href;
}

/** GET /settings: {models, languages, modelProperties, features, ...}. */
export async function loadServerInfo(serverUrl) {
  const response = await fetch(serverEndpoint(serverUrl, "settings"));
  if (!response.ok) throw new Error(`GET /settings: HTTP ${response.status}`);
  const body = await response.json();
  return body.settings;
}

export class SepiaSttClient extends EventTarget {
  /**
   * @param {{serverUrl: string, clientId?: string, accessToken?: string, debug?: boolean}} options
   */
  constructor({ serverUrl, clientId = "any", accessToken = "", debug = false }) {
    super();
    this.url = socketUrl(serverUrl);
    this.clientId = clientId;
    this.accessToken = accessToken;
    this.debug = debug;
    /** "new" -> "connecting" -> "ready" -> "ending" (audioend sent) -> "closed" */
    this.state = "new";
    this.lastMsgId = 0;
    this.bytesSent = 0;
    this.socket = null;
    this.waitingForAck = []; // audio and audioend queued until the welcome is acknowledged
    this.audioEndAcknowledged = false;
  }

  /**
   * Opens the socket and sends the welcome.
   * @param {object} options welcome `data`: language, model, task, continuous, ...
   * @returns {Promise<object>} the ack's `info` (`info.options` = what really applies)
   */
  connect(options = {}) {
    this.state = "connecting";
    return new Promise((resolve, reject) => {
      // The first error (no server, a wrong token, ...) fails the connect; later ones are no-ops.
      this.addEventListener("error", ({ detail }) => reject(new Error(detail.message)), {
        once: true,
      });
      let socket;
      try {
        socket = new WebSocket(this.url);
      } catch (error) {
        this.state = "closed"; // e.g. a URL scheme that is neither http(s) nor ws(s)
        this.emit("error", { code: 0, name: "ConnectionError", message: error.message });
        return;
      }
      socket.binaryType = "arraybuffer";
      this.socket = socket;
      socket.onopen = () =>
        this.sendJson({
          type: "welcome",
          msg_id: this.nextMsgId(),
          client_id: this.clientId,
          access_token: this.accessToken,
          data: { samplerate: DEFAULT_SAMPLE_RATE, ...options },
        });
      socket.onmessage = (event) => this.receive(event.data, resolve);
      socket.onerror = () => {
        const error = { code: 0, name: "ConnectionError", message: `Cannot connect to ${this.url}` };
        if (this.state === "connecting") this.emit("error", error);
      };
      socket.onclose = ({ code, reason }) => {
        const wasConnecting = this.state === "connecting";
        this.state = "closed";
        this.emit("close", { code, reason });
        if (wasConnecting) reject(new Error(reason || `Connection closed (${code})`));
      };
    });
  }

  /**
   * Sends PCM (16-bit little-endian mono at the welcome's samplerate), or SEPIA's WAV header.
   * Before the welcome ack, audio is queued so nothing said while connecting is lost.
   * @param {ArrayBuffer | ArrayBufferView} audio
   */
  sendAudio(audio) {
    if (this.state === "connecting") this.waitingForAck.push(audio);
    else if (this.state === "ready") this.sendBinary(audio);
  }

  /** End of input: the server sends the remaining results, then one last final. */
  endAudio() {
    const send = () => {
      const data = { byteLength: this.bytesSent, bufferOrTimeLimit: false };
      this.sendJson({ type: "audioend", msg_id: this.nextMsgId(), data });
      this.state = "ending";
    };
    if (this.state === "connecting") this.waitingForAck.push(send);
    else if (this.state === "ready") send();
  }

  close(code = NORMAL_CLOSURE, reason = "") {
    this.waitingForAck = [];
    if (this.socket && this.socket.readyState <= WebSocket.OPEN) this.socket.close(code, reason);
  }

  /** Bytes handed to the socket but not yet sent over the network. */
  get bufferedAmount() {
    return this.socket?.bufferedAmount ?? 0;
  }

  // -- internals ------------------------------------------------------------------------

  receive(data, resolveWelcome) {
    if (typeof data !== "string") return; // the server sends no binary frames
    const message = JSON.parse(data);
    this.emit("message", { direction: "in", message });
    switch (message.type) {
      case "welcome":
        this.state = "ready";
        for (const item of this.waitingForAck.splice(0)) {
          if (typeof item === "function") item();
          else this.sendBinary(item);
        }
        this.emit("welcome", message.info);
        resolveWelcome(message.info);
        break;
      case "ping":
        this.sendJson({ type: "pong", msg_id: message.msg_id });
        break;
      case "response":
        if (message.response === "audioend") this.audioEndAcknowledged = true;
        break;
      case "result":
        this.emit("result", message);
        // After the audioend response comes exactly one more final: the last message.
        if (message.isFinal && this.audioEndAcknowledged) {
          this.emit("done", message);
          this.close(NORMAL_CLOSURE, "done");
        }
        break;
      case "error":
        this.emit("error", message);
        break;
    }
  }

  sendJson(message) {
    this.socket.send(JSON.stringify(message));
    this.emit("message", { direction: "out", message });
  }

  sendBinary(audio) {
    this.socket.send(audio);
    this.bytesSent += audio.byteLength;
    this.emit("message", { direction: "out", message: { binaryBytes: audio.byteLength } });
  }

  nextMsgId() {
    this.lastMsgId = (this.lastMsgId % MAX_MSG_ID) + 1;
    return this.lastMsgId;
  }

  emit(type, detail) {
    if (this.debug) console.debug("[sepia-stt]", type, detail);
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
