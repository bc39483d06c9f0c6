// AudioWorklet processor "pcm-capture": microphone audio at the device rate in,
// 16 kHz mono Int16 frames of 512 samples (32 ms) out, each with its level in dBFS.
//
// Runs on the audio thread, so it only converts and posts; the page does the rest.
// The node is created with channelCount 1 ("explicit"), so Web Audio has already
// mixed a stereo input down to mono.
import { FrameCollector, SAMPLE_RATE, floatToInt16, levelDb } from "./pcm.js";
import { Resampler } from "./resampler.js";

class PcmCaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    // `sampleRate` is the AudioContext's rate, a global of the worklet scope.
    this.resampler = new Resampler(sampleRate, SAMPLE_RATE);
    this.frames = new FrameCollector();
  }

  process(inputs) {
    const mono = inputs[0][0];
    if (mono) {
      const pcm = floatToInt16(this.resampler.process(mono));
      this.frames.push(pcm, (frame) => {
        this.port.postMessage({ pcm: frame.buffer, level: levelDb(frame) }, [frame.buffer]);
      });
    }
    return true; // keep running until the page disconnects the node
  }
}

registerProcessor("pcm-capture", PcmCaptureProcessor);
