// The avmae-serve playground. Every request below is a public /v1 call (openapi.yaml), made as a client would
// make it, so this file doubles as an example. No framework and no build step: it is served as written.

const $ = (id) => document.getElementById(id);

// ---- The API ------------------------------------------------------------------------------------------------

/** An answer the server refused, with the code and message of its JSON error body. */
class APIError extends Error {
  constructor(status, code, message) {
    super(`${message} (${status} ${code})`);
    this.status = status;
  }
}

const api = {
  /** The bearer key, asked for on the first 401 and kept in this page's memory only. */
  key: null,

  /** fetch() with the key; on a 401 it asks for a (new) key and tries again, until the user cancels. */
  async call(path, init = {}) {
    for (;;) {
      const headers = new Headers(init.headers);
      if (this.key !== null) headers.set("Authorization", `Bearer ${this.key}`);
      const response = await fetch(path, { ...init, headers });
      if (response.status !== 401) return response;
      this.key = await askForKey(this.key === null ? "This server wants an API key." : "That key was refused.");
    }
  },

  /** The JSON answer; an error answer (`{"error": {"code", "message"}}`) becomes an APIError. */
  async json(path, init) {
    const response = await this.call(path, init);
    const body = await response.json().catch(() => null);  // e.g. a proxy's HTML error page
    if (!response.ok || body === null) throw refusal(response, body);
    return body;
  },

  /**
   * The lines of an NDJSON answer (`stream=true`), each parsed as it arrives. Until the first line the server
   * answers as it does without streaming, so an error status has the usual JSON error body.
   */
  async *lines(path, init) {
    const response = await this.call(path, init);
    if (!response.ok || !response.headers.get("Content-Type")?.startsWith("application/x-ndjson")) {
      throw refusal(response, await response.json().catch(() => null));
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let pending = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const lines = (pending + value).split("\n");
      pending = lines.pop();
      for (const line of lines) if (line !== "") yield JSON.parse(line);
    }
    if (pending.trim() !== "") yield JSON.parse(pending);
  },

  models() {
    return this.json("/v1/models");
  },

  /** POST /v1/classify with the clip as the raw body; `windows=true` adds the per-window timeline. */
  classify(clip, model, topK) {
    return this.json(clipURL("/v1/classify", model, { top_k: topK, windows: true }), clipRequest(clip));
  },

  /**
   * POST /v1/classify?stream=true: a line per window as soon as the model has it
   * (`{window, start_seconds, labels}`), then `{summary}`, the answer without its timeline, or `{error}`.
   */
  classifyStream(clip, model, topK) {
    return this.lines(clipURL("/v1/classify", model, { top_k: topK, stream: true }), clipRequest(clip));
  },

  /** POST /v1/embed: pooled embeddings per modality, and per window. */
  embed(clip, model) {
    return this.json(clipURL("/v1/embed", model, { windows: true }), clipRequest(clip));
  },
};

function refusal(response, body) {
  return new APIError(response.status, body?.error?.code ?? "not_json",
                      body?.error?.message ?? "the answer is not the JSON the API sends");
}

/** `?model=NAME` only when the server lists several models: with one, the parameter is optional. */
function clipURL(path, model, options) {
  const query = new URLSearchParams(options);
  if (state.models.length > 1) query.set("model", model.name);
  return `${path}?${query}`;
}

function clipRequest(clip) {
  // The server takes audio/*, video/* or octet-stream; a browser may name a file type it does not know.
  const type = /^(audio|video)\//.test(clip.type) ? clip.type : "application/octet-stream";
  return { method: "POST", headers: { "Content-Type": type }, body: clip };
}

function askForKey(reason) {
  const dialog = $("key-dialog");
  const input = $("api-key");
  $("key-reason").textContent = reason;
  input.value = "";
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve, reject) => {
    dialog.addEventListener("close", () => {
      const key = input.value.trim();
      input.value = "";
      if (dialog.returnValue === "use" && key !== "") resolve(key);
      else reject(new Error("this server needs an API key"));
    }, { once: true });
  });
}

// ---- Page state ---------------------------------------------------------------------------------------------

const state = {
  models: [],
  /** The clip to classify: a File, or the Blob a recording made. */
  clip: null,
  recorder: null,
  /** One action at a time: a clip dropped while another request runs is ignored. */
  busy: false,
};

const selectedModel = () => state.models[$("model").selectedIndex];

function setBusy(message) {
  $("status").textContent = message;
  $("error").hidden = true;
  for (const id of ["classify", "embed", "clip-file", "record"]) $(id).disabled = message !== "";
}

function showError(error) {
  $("status").textContent = "";
  $("error").textContent = error.message;
  $("error").hidden = false;
  for (const id of ["clip-file", "record"]) $(id).disabled = false;
  for (const id of ["classify", "embed"]) $(id).disabled = state.clip === null;
}

/** Runs one user action: the page is busy with `message` meanwhile, and a failure shows as an alert. */
async function act(message, action) {
  if (state.busy) return;
  state.busy = true;
  setBusy(message);
  try {
    await action();
    setBusy("");
    for (const id of ["classify", "embed"]) $(id).disabled = state.clip === null;
  } catch (error) {
    showError(error);
  } finally {
    state.busy = false;
  }
}

// ---- Models -------------------------------------------------------------------------------------------------

/** Lists the models; while one is still loading, asks again each second until none is. */
async function loadModels() {
  for (;;) {
    const { models } = await api.models();
    showModels(models);
    if (!models.some((model) => model.state === "loading")) return;
    $("status").textContent = "A model is still loading…";
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

function showModels(models) {
  const chosen = selectedModel()?.name;
  state.models = models;
  const select = $("model");
  select.replaceChildren(...models.map((model) =>
    new Option(model.state === "ready" || model.state === undefined ? model.name : `${model.name} (${model.state})`,
               model.name, false, model.name === chosen)));
  select.disabled = models.length < 2;
  showModel();
}

/** A model that serves has all its facts; one that is loading or failed only its state and error. */
function showModel() {
  const model = selectedModel();
  if (!model) return;
  const facts = model.kind === undefined ? [`state: ${model.state}`] : [
    model.kind,
    `modalities: ${model.modalities.join(", ")}`,
    `${model.classes} ${model.label_set} classes`,
    `${model.clip_seconds} s windows`,
    `${model.parameters.toLocaleString("en")} parameters`,
  ];
  if (model.version) facts.push(`version ${model.version}`);
  if (model.error) facts.push(model.error);
  $("model-details").textContent = facts.join(" · ");
  $("placeholder-note").hidden = model.placeholder_labels !== true;
}

// ---- The clip: a file (chosen or dropped) or a recording ----------------------------------------------------

function useClip(clip) {
  state.clip = clip;
  act(`Classifying ${clip.name ?? "the recording"}…`, classify);
}

function setUpDropZone() {
  const zone = $("drop-zone");
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    const file = event.dataTransfer.files[0];
    if (file) useClip(file);
  });
  $("clip-file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (file) useClip(file);
  });
}

/** Shown only where the browser can record (a secure context: https or localhost, with MediaRecorder). */
function setUpRecording() {
  if (!navigator.mediaDevices?.getUserMedia || typeof MediaRecorder === "undefined") return;
  $("record-row").hidden = false;
  $("record").addEventListener("click", async () => {
    if (state.recorder) {
      state.recorder.stop();
      return;
    }
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      const recorder = new MediaRecorder(stream);
      const chunks = [];
      recorder.addEventListener("dataavailable", (event) => chunks.push(event.data));
      recorder.addEventListener("stop", () => {
        stream.getTracks().forEach((track) => track.stop());
        state.recorder = null;
        $("record").textContent = "Record from the microphone";
        $("record").setAttribute("aria-pressed", "false");
        useClip(new Blob(chunks, { type: recorder.mimeType }));
      });
      recorder.start();
      state.recorder = recorder;
      $("record").textContent = "Stop recording and classify";
      $("record").setAttribute("aria-pressed", "true");
    } catch (error) {
      showError(new Error(`cannot record: ${error.message}`));
    }
  });
}

// ---- Results ------------------------------------------------------------------------------------------------

async function classify() {
  if (state.models.length === 0) await loadModels();  // the first try may have ended at the key prompt
  const topK = Math.max(1, Number($("top-k").value) || 5);
  const model = selectedModel();
  const result = streams(state.clip) ? await classifyStreamed(model, topK)
    : await api.classify(state.clip, model, topK);
  showLabels(result.labels);
  if (result.timeline) {
    timeline.reset();
    for (const clipWindow of result.timeline) timeline.appendWindow(clipWindow);
  }
  $("timeline-section").hidden = result.windows_used < 2;
  showRequest(result);
  $("result").hidden = false;
}

/**
 * Recordings are streamed: an hour of audio or video shows its timeline growing window by window instead of a
 * blank page for minutes. A file whose type the browser cannot name is sent whole, since it may be neither.
 */
function streams(clip) {
  return clip.type.startsWith("audio/") || clip.type.startsWith("video/");
}

/** Grows the timeline from the window lines; returns the summary line's answer. */
async function classifyStreamed(model, topK) {
  timeline.reset();
  $("labels").replaceChildren();
  $("request-details").replaceChildren();
  $("result").hidden = false;
  for await (const line of api.classifyStream(state.clip, model, topK)) {
    if (line.summary) return line.summary;
    if (line.error) {
      throw new Error(`stopped at window ${line.error.window}: ${line.error.message} (${line.error.code})`);
    }
    timeline.appendWindow({ index: line.window, start_seconds: line.start_seconds, labels: line.labels });
    $("timeline-section").hidden = timeline.windows.length < 2;
    $("status").textContent = `Classifying… ${timeline.windows.length} window(s), ` +
      `${line.start_seconds.toFixed(0)} s into the recording`;
  }
  throw new Error("the stream ended without its summary line");
}

async function downloadEmbeddings() {
  if (state.models.length === 0) await loadModels();
  const result = await api.embed(state.clip, selectedModel());
  const file = new Blob([JSON.stringify(result, null, 1)], { type: "application/json" });
  const link = document.createElement("a");
  link.href = URL.createObjectURL(file);
  link.download = `${(state.clip.name ?? "recording").replace(/\.[^.]*$/, "")}.embeddings.json`;
  link.click();
  URL.revokeObjectURL(link.href);
}

function showLabels(labels) {
  $("labels").replaceChildren(...labels.map((label) => {
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = label.name;
    name.title = label.id;
    const bar = document.createElement("span");
    bar.className = "bar";
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.width = `${(100 * label.score).toFixed(1)}%`;
    bar.append(fill);
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = label.score.toFixed(3);
    item.append(name, bar, score);
    return item;
  }));
}

function showRequest(result) {
  const timings = result.timings_ms;
  const rows = [
    ["model", result.model],
    ["model version", result.model_version],
    ["request id", result.request_id],
    ["modalities", result.modalities.join(", ")],
    ["duration", `${result.duration_seconds.toFixed(2)} s in ${result.windows_used} window(s)`],
    ["aggregation", result.aggregation],
    ["timings (ms)", ["decode", "queue", "inference", "total"].map((step) => `${step} ${timings[step]}`).join(" · ")],
  ];
  $("request-details").replaceChildren(...rows.filter(([, value]) => value !== undefined).flatMap(([term, value]) => {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = value;
    return [dt, dd];
  }));
}

/**
 * The timeline as a heat strip: one row per class, one column per window, darker for a higher score. It is fed
 * one window at a time (`appendWindow`), so an answer that arrives window by window can grow it as it comes.
 */
class Timeline {
  static maxClasses = 8;

  constructor(table, legend) {
    this.table = table;
    this.legend = legend;
    this.reset();
  }

  reset() {
    this.windows = [];
    this.table.replaceChildren();
    this.table.dataset.windows = 0;
    this.legend.textContent = "";
  }

  /** One window of the answer's `timeline`: {index, start_seconds, labels: [{id, name, score}]}. */
  appendWindow(clipWindow) {
    this.windows.push(clipWindow);
    this.render();
  }

  /** The classes to show: those with the highest score in any window, best first. */
  classes() {
    const best = new Map();
    for (const clipWindow of this.windows) {
      for (const label of clipWindow.labels) {
        const seen = best.get(label.id);
        if (!seen || label.score > seen.score) best.set(label.id, label);
      }
    }
    return [...best.values()].sort((a, b) => b.score - a.score).slice(0, Timeline.maxClasses);
  }

  render() {
    const head = document.createElement("tr");
    head.append(cell("th", "class", "col"));
    for (const clipWindow of this.windows) head.append(cell("th", `${clipWindow.start_seconds.toFixed(0)} s`, "col"));
    const classes = this.classes();
    // (classes, windows): a class's score in each window, undefined where it is not among that window's labels
    const scores = classes.map((label) =>
      this.windows.map((clipWindow) => clipWindow.labels.find((other) => other.id === label.id)?.score));
    // The colour spans the scores shown, lightest to darkest, so close scores still look different.
    const shown = scores.flat().filter((score) => score !== undefined);
    const low = Math.min(...shown);
    const high = Math.max(...shown);
    const shade = (score) => (high > low ? 0.15 + (0.85 * (score - low)) / (high - low) : 1);
    const rows = classes.map((label, row) => {
      const tr = document.createElement("tr");
      tr.append(cell("th", label.name, "row"));
      for (const score of scores[row]) {
        const td = cell("td", score === undefined ? "not in this window's top labels" : score.toFixed(3));
        td.style.setProperty("--shade", score === undefined ? 0 : shade(score));
        tr.append(td);
      }
      return tr;
    });
    this.table.replaceChildren(head, ...rows);
    this.table.dataset.windows = this.windows.length;
    this.legend.textContent = shown.length ? `Lightest ${low.toFixed(3)}, darkest ${high.toFixed(3)}; ` +
      "an empty cell is a class outside that window's top labels." : "";
  }
}

/** A table cell whose text is for screen readers and tooltips; the colour shows the score (--shade). */
function cell(tag, text, scope) {
  const element = document.createElement(tag);
  if (scope) {
    element.scope = scope;
    element.textContent = text;
  } else {
    element.title = text;
    const hidden = document.createElement("span");
    hidden.className = "visually-hidden";
    hidden.textContent = text;
    element.append(hidden);
  }
  return element;
}

const timeline = new Timeline($("timeline"), $("timeline-legend"));

// ---- Start --------------------------------------------------------------------------------------------------

$("model").addEventListener("change", showModel);
$("classify").addEventListener("click", () => act("Classifying…", classify));
$("embed").addEventListener("click", () => act("Computing embeddings…", downloadEmbeddings));
setUpDropZone();
setUpRecording();
act("Loading the model list…", loadModels);
