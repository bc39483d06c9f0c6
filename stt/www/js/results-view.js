// What the engine gives beyond the text: the session's effective options (welcome ack),
// and per final result its confidence, alternatives, word timings and speaker vector.

const MAX_CARDS = 20;
/** Width of one second on the word timeline, so short words stay readable. */
const PIXELS_PER_SECOND = 140;

export class ResultsView {
  /**
   * @param {HTMLElement} sessionInfo where the ack's options go
   * @param {HTMLElement} list where result cards go, newest first
   */
  constructor(sessionInfo, list) {
    this.sessionInfo = sessionInfo;
    this.list = list;
  }

  /** The welcome ack: which model, engine and options really apply. */
  showSession(info) {
    const options = info.options ?? {};
    const rows = Object.entries(options).map(([key, value]) => {
      const item = element("div", "option");
      item.append(element("dt", "", key), element("dd", "", formatValue(value)));
      return item;
    });
    const list = element("dl", "options");
    list.append(...rows);
    this.sessionInfo.replaceChildren(element("h3", "", "Active session options"), list);
  }

  /** A card for one final result. */
  addFinal(result) {
    const card = element("li", "result-card");
    const header = element("div", "result-header");
    header.append(
      element("span", "badge", "final"),
      element("span", "result-time", new Date().toLocaleTimeString()),
      element("span", "confidence", `confidence ${formatConfidence(result.confidence)}`),
    );
    card.append(header, element("p", "result-text", result.transcript || "(empty)"));

    const features = result.features ?? {};
    if (features.words?.length) card.append(wordTimeline(features.words));
    if (result.alternatives?.length) card.append(alternativesList(result.alternatives));
    if (features.speaker_vector?.length) {
      const length = features.speaker_vector.length;
      card.append(element("p", "speaker", `Speaker vector: ${length} values`));
    }
    this.list.prepend(card);
    while (this.list.children.length > MAX_CARDS) this.list.lastElementChild.remove();
  }

  clear() {
    this.sessionInfo.replaceChildren();
    this.list.replaceChildren();
  }
}

/** Words as blocks on a time axis; colour shows the word confidence where the engine gives one. */
function wordTimeline(words) {
  const start = Math.floor(words[0].start);
  const end = Math.max(...words.map((w) => w.end));
  const seconds = Math.max(end - start, 0.5);
  const track = element("div", "timeline-track");
  track.style.minWidth = `${Math.ceil(seconds * PIXELS_PER_SECOND)}px`;
  for (const word of words) {
    const block = element("span", "word", word.word);
    block.style.left = `${((word.start - start) / seconds) * 100}%`;
    block.style.width = `${((word.end - word.start) / seconds) * 100}%`;
    const confidence = word.conf === undefined ? "" : `, confidence ${word.conf.toFixed(2)}`;
    block.title = `${word.word}: ${word.start.toFixed(2)}–${word.end.toFixed(2)} s${confidence}`;
    if (word.conf !== undefined) block.style.setProperty("--conf", word.conf);
    track.append(block);
  }
  const axis = element("div", "timeline-axis");
  axis.append(element("span", "", `${start.toFixed(1)} s`), element("span", "", `${end.toFixed(2)} s`));
  const timeline = element("div", "word-timeline");
  timeline.append(track, axis);
  return timeline;
}

function alternativesList(alternatives) {
  const section = element("div", "alternatives");
  const list = element("ol");
  for (const alternative of alternatives) {
    const item = element("li", "", alternative.text || "(empty)");
    item.append(element("span", "confidence", formatConfidence(alternative.confidence)));
    list.append(item);
  }
  section.append(element("h4", "", "Alternatives"), list);
  return section;
}

function formatConfidence(value) {
  return typeof value === "number" && value >= 0 ? value.toFixed(2) : "n/a";
}

function formatValue(value) {
  if (Array.isArray(value)) return value.length ? value.join(", ") : "–";
  if (value === null || value === "") return "–";
  return String(value);
}

function element(tag, className = "", text = "") {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}
