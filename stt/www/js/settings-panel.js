// The settings form: server connection (kept in localStorage, never in the URL),
// model choice from GET /settings, and the welcome options.
import { loadServerInfo } from "./sepia-stt-client.js";

const STORAGE_KEY = "sepia-stt-test-page";
const CHECKBOXES = ["continuous", "optimizeFinalResult", "words", "speaker"];
const DEFAULTS = {
  serverUrl: location.protocol.startsWith("http") ? location.origin : "http://localhost:20741",
  clientId: "any",
  accessToken: "test1234", // the server's default common token
  alternatives: "1",
};

export class SettingsPanel extends EventTarget {
  /** @param {HTMLFormElement} form */
  constructor(form) {
    super();
    this.form = form;
    this.fields = form.elements;
    this.serverInfo = null;
    this.stored = { ...DEFAULTS, ...readStorage() };
    this.restore(["serverUrl", "clientId", "accessToken", "alternatives", "phrases", ...CHECKBOXES]);
    form.addEventListener("submit", (event) => event.preventDefault());
    form.addEventListener("input", () => this.save()); // typing counts, not only leaving a field
    form.addEventListener("change", (event) => this.onChange(event.target));
  }

  /** Loads models, languages and features from the server; resolves to the server info. */
  async load() {
    this.serverInfo = null;
    this.fillModelChoices({ models: [], languages: [], modelProperties: [], features: [] });
    const info = await loadServerInfo(this.fields.serverUrl.value);
    this.serverInfo = info;
    this.fillModelChoices(info);
    this.restore(["language", "model"]);
    this.fillTasks();
    this.restore(["task"]);
    this.updateDependentFields();
    return info;
  }

  /** Where and as whom to connect. */
  get connection() {
    return {
      serverUrl: this.fields.serverUrl.value.trim(),
      clientId: this.fields.clientId.value.trim(),
      accessToken: this.fields.accessToken.value,
    };
  }

  /** The welcome `data`: only what the user chose, so the server's defaults apply otherwise. */
  welcomeOptions() {
    const f = this.fields;
    const options = {};
    if (f.model.value) options.model = f.model.value;
    else if (f.language.value) {
      options.language = f.language.value;
      if (f.task.value) options.task = f.task.value;
    }
    for (const name of CHECKBOXES) options[name] = f[name].checked;
    options.alternatives = Number(f.alternatives.value);
    const phrases = f.phrases.value.split(/[\n,]/).map((p) => p.trim()).filter(Boolean);
    if (phrases.length) options.phrases = phrases;
    return options;
  }

  /**
   * The form fields of a file transcription (POST /v1/audio/transcriptions), chosen as the
   * welcome's: the chosen model, else the default ("whisper-1") for the chosen language. The
   * endpoint has no task.
   */
  transcriptionFields() {
    const { model, language } = this.fields;
    const fields = { model: model.value || "whisper-1" };
    if (!model.value && language.value) fields.language = language.value;
    return fields;
  }

  // -- internals ------------------------------------------------------------------------

  onChange(field) {
    if (field.name === "language") this.fillTasks();
    this.updateDependentFields();
    this.save();
    if (field.name === "serverUrl") this.dispatchEvent(new Event("serverchange"));
  }

  fillModelChoices({ models, languages, modelProperties }) {
    const { language, model } = this.fields;
    const uniqueLanguages = [...new Set(languages)];
    setOptions(language, [["", "Server default"], ...uniqueLanguages.map((l) => [l, l])]);
    setOptions(model, [
      ["", "Automatic (by language and task)"],
      ...models.map((name, i) => [name, modelLabel(name, languages[i], modelProperties[i])]),
    ]);
  }

  /** Tasks of the models of the chosen language (a task needs a language). */
  fillTasks() {
    const info = this.serverInfo;
    const language = this.fields.language.value;
    const tasks = new Set();
    info?.languages.forEach((code, i) => {
      const task = info.modelProperties[i]?.task;
      if (code === language && task) tasks.add(task);
    });
    setOptions(this.fields.task, [["", "Any"], ...[...tasks].map((t) => [t, t])]);
  }

  /** A chosen model decides language and task; show the features of the engine that will run. */
  updateDependentFields() {
    const f = this.fields;
    const modelChosen = Boolean(f.model.value);
    f.language.disabled = modelChosen;
    f.task.disabled = modelChosen || !f.language.value || f.task.options.length <= 1;
    this.form.querySelector("#engine-features").replaceChildren(...this.featureChips());
  }

  featureChips() {
    const info = this.serverInfo;
    if (!info || info.models.length === 0) return [];
    const f = this.fields;
    const index = expectedModelIndex(info, f.model.value, f.language.value, f.task.value);
    const engine = info.modelProperties[index]?.engine ?? info.engine;
    const features = Array.isArray(info.features) ? info.features : (info.features[engine] ?? []);
    const title = chip(`${info.models[index]} · ${engine}`, "chip chip-model");
    return [title, ...features.map((name) => chip(name, "chip"))];
  }

  restore(names) {
    for (const name of names) {
      const field = this.fields[name];
      const value = this.stored[name];
      if (value === undefined) continue;
      if (field.type === "checkbox") field.checked = Boolean(value);
      else if (field.tagName !== "SELECT" || [...field.options].some((o) => o.value === value)) {
        field.value = value;
      }
    }
  }

  save() {
    for (const field of this.form.elements) {
      if (!field.name) continue;
      this.stored[field.name] = field.type === "checkbox" ? field.checked : field.value;
    }
    localStorage.setItem(STORAGE_KEY, JSON.stringify(this.stored));
  }
}

/**
 * The model the server will choose (API.md, "Model choice"), to show its engine's features
 * before connecting. The welcome ack's `options` is what really applies.
 */
export function expectedModelIndex({ models, languages, modelProperties }, model, language, task) {
  if (model) return Math.max(0, models.indexOf(model));
  if (!language) return 0;
  const short = (code) => code.split(/[-_]/)[0].toLowerCase();
  let candidates = languages.flatMap((code, i) => (code === language ? [i] : []));
  if (candidates.length === 0) {
    const firstSameShort = languages.find((code) => short(code) === short(language));
    candidates = languages.flatMap((code, i) => (code === firstSameShort ? [i] : []));
  }
  const withTask = candidates.find((i) => task && modelProperties[i]?.task === task);
  return withTask ?? candidates[0] ?? 0;
}

function modelLabel(name, language, properties = {}) {
  const details = [language, properties.engine, properties.task].filter(Boolean).join(", ");
  return `${name} (${details})`;
}

function setOptions(select, pairs) {
  const previous = select.value;
  select.replaceChildren(...pairs.map(([value, label]) => new Option(label, value)));
  if (pairs.some(([value]) => value === previous)) select.value = previous;
}

function chip(text, className) {
  const element = document.createElement("span");
  element.className = className;
  element.textContent = text;
  return element;
}

function readStorage() {
  try {
    return JSON.parse(localStorage.getItem(STORAGE_KEY)) ?? {};
  } catch {
    return {}; // unreadable or blocked storage: start from the defaults
  }
}
