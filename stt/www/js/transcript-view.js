// The running transcript: finals in black, the partial of the utterance in progress in grey.
//
// In non-continuous mode the server sends finals only after audioend, and partials restart
// with each utterance (an empty partial marks the switch), so the partials of the earlier
// utterances are kept on screen until the final replaces them.

export class TranscriptView {
  /** @param {HTMLElement} root */
  constructor(root) {
    this.root = root;
    this.placeholder = root.querySelector(".placeholder");
    this.startSession();
  }

  /** Text of the next session goes into a new paragraph. */
  startSession() {
    this.paragraph = null;
    this.finals = 0;
    this.earlierPartials = [];
    this.currentPartial = "";
  }

  partial(text) {
    if (text === "" && this.currentPartial !== "") this.earlierPartials.push(this.currentPartial);
    this.currentPartial = text;
    this.showPending([...this.earlierPartials, text].filter(Boolean).join(" "));
  }

  /**
   * Shows a final; an empty one says "nothing recognized" only if the session had no other.
   * @returns {boolean} whether it was shown
   */
  final(text) {
    this.earlierPartials = [];
    this.currentPartial = "";
    this.showPending("");
    if (!text && this.finals > 0) return false;
    this.finals += 1;
    const final = document.createElement("span");
    final.className = text ? "final" : "final empty";
    final.textContent = text || "(nothing recognized)";
    this.pending.before(final, " ");
    this.scrollToEnd();
    return true;
  }

  clear() {
    this.root.querySelectorAll("p:not(.placeholder)").forEach((p) => p.remove());
    this.placeholder.hidden = false;
    this.startSession();
  }

  showPending(text) {
    if (!this.paragraph) {
      this.placeholder.hidden = true;
      this.paragraph = document.createElement("p");
      this.pending = document.createElement("span");
      this.pending.className = "partial";
      this.paragraph.append(this.pending);
      this.root.append(this.paragraph);
    }
    this.pending.textContent = text;
    this.scrollToEnd();
  }

  scrollToEnd() {
    this.root.scrollTop = this.root.scrollHeight;
  }
}
