// Streaming sample-rate converter: windowed-sinc low-pass + polyphase interpolation.
//
// Dropping or averaging samples would fold everything above 8 kHz back into the
// speech band; a proper low-pass before decimation keeps the recognizer's input clean.
// Pure module (no DOM), so both the AudioWorklet and the page can import it.

const ZERO_CROSSINGS = 16; // sinc lobes on each side: longer = steeper cut-off
const PHASES = 256; // fractional positions in the kernel table, interpolated linearly
const PASSBAND = 0.92; // cut-off as a fraction of the lower Nyquist frequency

export class Resampler {
  /**
   * @param {number} inputRate samples per second going in
   * @param {number} outputRate samples per second coming out
   */
  constructor(inputRate, outputRate) {
    this.step = inputRate / outputRate; // input samples per output sample
    this.passthrough = inputRate === outputRate;
    const cutoff = PASSBAND * Math.min(1, outputRate / inputRate); // of the input Nyquist
    this.halfTaps = Math.ceil(ZERO_CROSSINGS / cutoff);
    this.kernels = buildKernelTable(cutoff, this.halfTaps);
    // Input not yet consumed, preceded by zeros so the first output has a full window.
    this.pending = new Float32Array(this.halfTaps - 1);
    this.position = this.halfTaps - 1; // index in `pending` of the next output's input time
  }

  /**
   * Feed input samples, get every output sample they complete.
   * @param {Float32Array} input
   * @returns {Float32Array}
   */
  process(input) {
    if (this.passthrough) return input.slice();
    const buffer = concat(this.pending, input);
    const taps = 2 * this.halfTaps;
    const outputCount = Math.max(
      0,
      Math.ceil((buffer.length - this.halfTaps - this.position) / this.step),
    );
    const output = new Float32Array(outputCount);
    let position = this.position;
    for (let n = 0; n < outputCount; n++) {
      const whole = Math.floor(position);
      const phase = (position - whole) * PHASES;
      const row = Math.floor(phase);
      const mix = phase - row;
      const lower = this.kernels[row];
      const upper = this.kernels[row + 1];
      const first = whole - this.halfTaps + 1;
      let sum = 0;
      for (let k = 0; k < taps; k++) {
        const weight = lower[k] + mix * (upper[k] - lower[k]);
        sum += weight * buffer[first + k];
      }
      output[n] = sum;
      position += this.step;
    }
    // Keep only what the next outputs still need.
    const keepFrom = Math.floor(position) - this.halfTaps + 1;
    this.pending = buffer.slice(keepFrom);
    this.position = position - keepFrom;
    return output;
  }
}

/**
 * Kernel rows for fractional offsets 0, 1/PHASES, ..., 1 (one extra row to interpolate to).
 * Row p, tap k weighs input sample (whole - halfTaps + 1 + k) for an output at whole + p/PHASES.
 */
function buildKernelTable(cutoff, halfTaps) {
  const rows = [];
  for (let p = 0; p <= PHASES; p++) {
    const fraction = p / PHASES;
    const row = new Float32Array(2 * halfTaps);
    let sum = 0;
    for (let k = 0; k < row.length; k++) {
      const distance = k - halfTaps + 1 - fraction; // in input samples
      row[k] = cutoff * sinc(cutoff * distance) * blackman(distance / (halfTaps + 1));
      sum += row[k];
    }
    for (let k = 0; k < row.length; k++) row[k] /= sum; // unity gain at DC
    rows.push(row);
  }
  return rows;
}

function sinc(x) {
  if (x === 0) return 1;
  const angle = Math.PI * x;
  return Math.sin(angle) / angle;
}

/** Blackman window on [-1, 1]: about 74 dB stop-band attenuation. */
function blackman(u) {
  if (Math.abs(u) >= 1) return 0;
  return 0.42 + 0.5 * Math.cos(Math.PI * u) + 0.08 * Math.cos(2 * Math.PI * u);
}

function concat(a, b) {
  const joined = new Float32Array(a.length + b.length);
  joined.set(a, 0);
  joined.set(b, a.length);
  return joined;
}
