// Microphone capture: getUserMedia -> AudioWorklet "pcm-capture" -> 16 kHz Int16 frames.

const WORKLET_URL = new URL("./pcm-worklet.js", import.meta.url);

/** Why the microphone cannot be used on this page, or null if it can. */
export function microphoneUnavailableReason() {
  if (!window.isSecureContext) {
    return "insecure-context";
  }
  if (!navigator.mediaDevices?.getUserMedia || typeof AudioWorkletNode === "undefined") {
    return "unsupported";
  }
  return null;
}

export class Microphone {
  /**
   * Starts capturing. Resolves once audio flows; rejects if access is denied.
   * @param {{onFrame: (pcm: Int16Array) => void, onLevel: (db: number) => void}} sinks
   */
  async start({ onFrame, onLevel }) {
    // Locals until everything runs: a stop() meanwhile has nothing half-built to tear down,
    // and the caller stops again once this resolves.
    const stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1 } });
    // The device's own rate: the worklet resamples (better than an implicit browser resampler).
    const context = new AudioContext();
    try {
      await context.audioWorklet.addModule(WORKLET_URL);
      const node = new AudioWorkletNode(context, "pcm-capture", {
        numberOfInputs: 1,
        numberOfOutputs: 0,
        channelCount: 1,
        channelCountMode: "explicit", // Web Audio mixes a stereo input down to mono
      });
      node.port.onmessage = ({ data }) => {
        onFrame(new Int16Array(data.pcm));
        onLevel(data.level);
      };
      context.createMediaStreamSource(stream).connect(node);
      await context.resume(); // may start suspended without a fresh user gesture
      Object.assign(this, { stream, context, node });
    } catch (error) {
      stream.getTracks().forEach((track) => track.stop());
      context.close();
      throw error;
    }
  }

  /** Stops the microphone (the browser's recording indicator goes off). */
  async stop() {
    this.node?.port.close();
    this.node?.disconnect();
    this.stream?.getTracks().forEach((track) => track.stop());
    await this.context?.close();
    this.node = this.stream = this.context = null;
  }

  get sampleRate() {
    return this.context?.sampleRate;
  }
}
