// Input level bar: dBFS mapped onto the bar's width, falling back smoothly.

const FLOOR_DB = -60;
const FALL_PER_UPDATE = 0.08; // fraction of the bar the peak falls per frame

export class LevelMeter {
  /** @param {HTMLElement} bar its width is set in % */
  constructor(bar) {
    this.bar = bar;
    this.value = 0;
  }

  /** @param {number} db level of the latest frame, 0 dBFS = full scale */
  set(db) {
    const target = Math.min(1, Math.max(0, (db - FLOOR_DB) / -FLOOR_DB));
    this.value = Math.max(target, this.value - FALL_PER_UPDATE);
    this.bar.style.width = `${(this.value * 100).toFixed(1)}%`;
  }

  reset() {
    this.value = 0;
    this.bar.style.width = "0%";
  }
}
