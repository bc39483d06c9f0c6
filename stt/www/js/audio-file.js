// A sound file streamed like a microphone: decoded in the browser to 16 kHz mono Int16,
// then sent in 32 ms frames at realtime pace, a multiple of it, or as fast as possible.
import { FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE, floatToInt16, levelDb } from "./pcm.js";

/** Frames sent per timer tick at full speed: about 2 s of audio. */
const FULL_SPEED_BURST = 64;
/** At full speed, wait while the socket holds more than this many unsent bytes. */
const FULL_SPEED_BACKLOG_BYTES = 256 * 1024;

/**
 * Decodes WAV, OGG, MP3, ... (whatever the browser can) to 16 kHz mono Int16.
 * decodeAudioData resamples to its context's rate, so a 16 kHz OfflineAudioContext
 * does the rate conversion; the channels are then averaged.
 * @param {Blob} file
 * @returns {Promise<{pcm: Int16Array, seconds: number}>}
 */
export async function decodeAudioFile(file) {
  const context = new OfflineAudioContext(1, 1, SAMPLE_RATE);
  const decoded = await context.decodeAudioData(await file.arrayBuffer());
  const mono = new Float32Array(decoded.length);
  for (let c = 0; c < decoded.numberOfChannels; c++) {
    const channel = decoded.getChannelData(c);
    for (let i = 0; i < mono.length; i++) mono[i] += channel[i] / decoded.numberOfChannels;
  }
  return { pcm: floatToInt16(mono), seconds: decoded.duration };
}

export class FileStreamer {
  /**
   * @param {Int16Array} pcm 16 kHz mono samples
   * @param {number} speed 1 = realtime, 2 = twice as fast, ..., 0 = as fast as possible
   * @param {() => number} backlogBytes bytes the socket still has to send (for full speed)
   */
  constructor(pcm, speed, backlogBytes) {
    this.pcm = pcm;
    this.speed = speed;
    this.backlogBytes = backlogBytes;
    this.timer = null;
  }

  /**
   * Starts sending; `onEnd` is called after the last frame (not after `stop()`).
   * @param {{onFrame: (pcm: Int16Array) => void, onLevel: (db: number) => void, onEnd: () => void}} sinks
   */
  start({ onFrame, onLevel, onEnd }) {
    const frameCount = Math.ceil(this.pcm.length / FRAME_SAMPLES);
    const startedAt = performance.now();
    let next = 0;
    const sendUpTo = (end) => {
      for (; next < Math.min(end, frameCount); next++) {
        const frame = this.pcm.slice(next * FRAME_SAMPLES, (next + 1) * FRAME_SAMPLES);
        onFrame(frame);
        onLevel(levelDb(frame));
      }
    };
    const tick = () => {
      if (this.speed > 0) {
        const elapsedMs = (performance.now() - startedAt) * this.speed;
        sendUpTo(Math.floor(elapsedMs / FRAME_MS) + 1);
      } else if (this.backlogBytes() < FULL_SPEED_BACKLOG_BYTES) {
        sendUpTo(next + FULL_SPEED_BURST);
      }
      if (next >= frameCount) {
        this.timer = null;
        onEnd();
      } else {
        this.timer = setTimeout(tick, this.speed > 0 ? FRAME_MS / this.speed : 10);
      }
    };
    tick();
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = null;
  }
}
