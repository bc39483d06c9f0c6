// One recognition from start to last result: an audio source (microphone or file)
// streamed through a SepiaSttClient.
//
// States, reported by "statechange" events ({state, detail}):
//   connecting -> active -> finishing -> done
//   any of them -> error (detail: the server's message, or why the source failed)
import { SepiaSttClient } from "./sepia-stt-client.js";
import { wavHeader } from "./pcm.js";

export class RecognitionSession extends EventTarget {
  /**
   * @param {object} config
   * @param {{serverUrl: string, clientId: string, accessToken: string}} config.connection
   * @param {object} config.welcomeOptions
   * @param {{start: Function, stop: Function}} config.source Microphone or FileStreamer
   * @param {(db: number) => void} config.onLevel
   * @param {boolean} [config.debug]
   */
  constructor({ connection, welcomeOptions, source, onLevel, debug = false }) {
    super();
    this.client = new SepiaSttClient({ ...connection, debug });
    this.welcomeOptions = welcomeOptions;
    this.source = source;
    this.onLevel = onLevel;
    this.state = "new";
    this.client.addEventListener("welcome", () => {
      if (this.state === "connecting") this.setState("active");
    });
    this.client.addEventListener("done", () => this.setState("done"));
    this.client.addEventListener("error", ({ detail }) => this.fail(describeError(detail)));
    this.client.addEventListener("close", ({ detail }) => {
      if (!["done", "error"].includes(this.state)) {
        this.fail(`Connection closed (code ${detail.code}) ${detail.reason}`.trim());
      }
    });
  }

  /** Connects and starts the source at once: audio is queued until the welcome ack. */
  async start() {
    this.setState("connecting");
    this.client.connect(this.welcomeOptions).catch(() => {}); // failures arrive as "error"/"close"
    this.client.sendAudio(wavHeader()); // first, like SEPIA's client; the server skips it
    try {
      await this.source.start({
        onFrame: (pcm) => this.client.sendAudio(pcm),
        onLevel: this.onLevel,
        onEnd: () => this.finish(),
      });
    } catch (error) {
      this.fail(`${error.name}: ${error.message}`);
      return;
    }
    // The session may have ended (stop pressed, server error) while the microphone opened.
    if (this.state !== "connecting" && this.state !== "active") this.source.stop();
  }

  /** Stops the source and asks for the last result. */
  finish() {
    if (this.state !== "connecting" && this.state !== "active") return;
    this.source.stop();
    this.client.endAudio();
    this.setState("finishing");
  }

  fail(detail) {
    if (this.state === "error" || this.state === "done") return;
    this.source.stop();
    this.client.close();
    this.setState("error", detail);
  }

  setState(state, detail = "") {
    this.state = state;
    this.dispatchEvent(new CustomEvent("statechange", { detail: { state, detail } }));
  }
}

/** "401 Unauthorized: Authentication failed: ..." from a server error message. */
function describeError({ code, name, message }) {
  return [code ? `${code} ${name}` : name, message].filter(Boolean).join(": ");
}
