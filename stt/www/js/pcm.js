// The audio format on the wire: 16 kHz mono signed 16-bit little-endian PCM.

export const SAMPLE_RATE = 16000;
/** Samples per frame sent to the server: 32 ms, 1024 bytes, like SEPIA's client. */
export const FRAME_SAMPLES = 512;
export const FRAME_MS = (1000 * FRAME_SAMPLES) / SAMPLE_RATE;

/** Float samples in [-1, 1] to Int16, clipped (the same scaling as SEPIA's client). */
export function floatToInt16(samples) {
  const pcm = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    pcm[i] = s < 0 ? s * 0x8000 : s * 0x7fff;
  }
  return pcm;
}

/** Root mean square level of Int16 samples in dBFS (-Infinity for digital silence). */
export function levelDb(pcm) {
  let sum = 0;
  for (let i = 0; i < pcm.length; i++) sum += pcm[i] * pcm[i];
  const rms = Math.sqrt(sum / Math.max(1, pcm.length)) / 0x8000;
  return 20 * Math.log10(rms);
}

/**
 * The 44-byte WAV header SEPIA's browser client sends before the stream. The sizes are
 * a maximum because the length is unknown; the server detects the header and skips it.
 */
export function wavHeader(sampleRate = SAMPLE_RATE) {
  const dataBytes = 0x7ffffff0;
  const view = new DataView(new ArrayBuffer(44));
  const ascii = (offset, text) => [...text].forEach((c, i) => view.setUint8(offset + i, c.charCodeAt(0)));
  ascii(0, "RIFF");
  view.setUint32(4, dataBytes + 36, true);
  ascii(8, "WAVE");
  ascii(12, "fmt ");
  view.setUint32(16, 16, true); // fmt chunk size
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, 1, true); // mono
  view.setUint32(24, sampleRate, true);
  view.setUint32(28, sampleRate * 2, true); // bytes per second
  view.setUint16(32, 2, true); // bytes per sample frame
  view.setUint16(34, 16, true); // bits per sample
  ascii(36, "data");
  view.setUint32(40, dataBytes, true);
  return view.buffer;
}

/** Cuts a stream of Int16 samples into fixed-size frames. */
export class FrameCollector {
  constructor(frameSamples = FRAME_SAMPLES) {
    this.frameSamples = frameSamples;
    this.frame = new Int16Array(frameSamples);
    this.filled = 0;
  }

  /**
   * Adds samples; calls `onFrame(Int16Array)` for every full frame. Each frame is a fresh
   * array that the callback may keep or transfer (which empties it).
   */
  push(samples, onFrame) {
    let offset = 0;
    while (offset < samples.length) {
      const count = Math.min(this.frameSamples - this.filled, samples.length - offset);
      this.frame.set(samples.subarray(offset, offset + count), this.filled);
      this.filled += count;
      offset += count;
      if (this.filled === this.frameSamples) {
        onFrame(this.frame);
        this.frame = new Int16Array(this.frameSamples);
        this.filled = 0;
      }
    }
  }
}
