// The raw message log for developers: every JSON message in and out, audio frames summed up.

const MAX_ENTRIES = 500;

export class MessageLog {
  /**
   * @param {HTMLOListElement} list
   * @param {HTMLElement} counter shows how many messages were logged
   */
  constructor(list, counter) {
    this.list = list;
    this.counter = counter;
    this.count = 0;
    this.audio = null; // the entry consecutive audio frames are added to
  }

  /** @param {"in" | "out"} direction @param {object} message JSON, or {binaryBytes} */
  add(direction, message) {
    if (message.binaryBytes !== undefined) this.addAudio(message.binaryBytes);
    else this.append(direction, message.type ?? "?", JSON.stringify(redacted(message)));
  }

  /** A note from the page itself (microphone rate, file decoded, ...). */
  note(text) {
    this.append("note", "page", text);
  }

  clear() {
    this.list.replaceChildren();
    this.count = 0;
    this.audio = null;
    this.counter.textContent = "";
  }

  addAudio(bytes) {
    if (!this.audio) {
      this.audio = { frames: 0, bytes: 0, entry: this.append("out", "audio", "") };
    }
    this.audio.frames += 1;
    this.audio.bytes += bytes;
    const { frames } = this.audio;
    this.audio.entry.lastChild.textContent =
      `${frames} binary frame${frames === 1 ? "" : "s"}, ${this.audio.bytes.toLocaleString("en")} bytes`;
  }

  append(direction, type, text) {
    const atBottom = this.list.scrollTop + this.list.clientHeight >= this.list.scrollHeight - 4;
    const entry = document.createElement("li");
    entry.className = `log-entry log-${direction}`;
    entry.dataset.type = type;
    const time = document.createElement("time");
    time.textContent = new Date().toISOString().slice(11, 23);
    const arrow = document.createElement("span");
    arrow.className = "log-direction";
    arrow.textContent = { in: "←", out: "→", note: "•" }[direction];
    const kind = document.createElement("span");
    kind.className = "log-type";
    kind.textContent = type;
    const body = document.createElement("code");
    body.textContent = text;
    entry.append(time, arrow, kind, body);
    this.list.append(entry);
    if (type !== "audio") this.audio = null;
    while (this.list.children.length > MAX_ENTRIES) this.list.firstElementChild.remove();
    this.count += 1;
    this.counter.textContent = `(${this.count})`;
    if (atBottom) this.list.scrollTop = this.list.scrollHeight;
    return entry;
  }
}

/** The token stays out of the log (screenshots, screen sharing). */
function redacted(message) {
  return message.access_token ? { ...message, access_token: "•••" } : message;
}
