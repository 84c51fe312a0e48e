// What every view of the dashboard shares: the API client, a DOM builder, polling, formatting and the
// page parts (headers, notices, status badges, chart cards).

import { PALETTE, formatNumber } from "./chart.js";

export const main = document.getElementById("main");
export const params = new URLSearchParams(location.search);
export const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
export const LIST_POLL_MS = 1500;
export const LIVE_POLL_MS = 1000;
export const COLORS = { train: PALETTE[0], val: PALETTE[1], best: "#2f9e6b" };

// The API key the user pasted into the header (a server started with `auth=keys` needs one on every /v1 call).
const KEY_STORAGE = "steadyfit.apiKey";

export function storedKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return "";
  }
}

export function storeKey(key) {
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
}

export const isAuthError = (error) => error?.status === 401 || error?.status === 403;
export const authTitle = () => (storedKey() ? "API key not accepted" : "API key needed");

function authMessage(problem) {
  if (!storedKey()) return "This server needs an API key. Enter yours in the API key box at the top of the page.";
  const why = problem?.detail ? `: ${problem.detail}` : "";
  return `The server refused the stored API key${why}. Enter another API key at the top of the page.`;
}

class ApiError extends Error {
  constructor(status, problem) {
    super(
      status === 401 || status === 403
        ? authMessage(problem)
        : problem?.detail || problem?.title || `The server answered ${status}.`,
    );
    this.status = status;
    this.problem = problem;
  }
}

// Every call to the API goes through here: it sends the stored key, and turns an error answer into an ApiError.
export async function apiFetch(path, options = {}) {
  const key = storedKey();
  const auth = key ? { Authorization: `Bearer ${key}` } : {};
  const headers = { Accept: "application/json", ...auth, ...options.headers };
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch (error) {
    if (error?.name === "AbortError") throw error;
    throw new ApiError(0, { detail: "The steadyfit API did not answer." });
  }
  if (!response.ok) {
    const json = (response.headers.get("Content-Type") || "").includes("json");
    throw new ApiError(response.status, json ? await response.json().catch(() => null) : null);
  }
  return response;
}

export async function api(path, options = {}) {
  const response = await apiFetch(path, options);
  return (response.headers.get("Content-Type") || "").includes("json") ? await response.json() : null;
}

// Reads a server-sent event stream with fetch(), which (unlike EventSource) can send the API key. Calls
// onOpen() once the server accepts, then onEvent({type, data, id}) per event; resolves when the server ends
// the stream, rejects with an ApiError (or the AbortError of `signal`). Parses the lines as the SSE spec says.
export async function readEvents(path, { signal, onOpen, onEvent }) {
  const response = await apiFetch(path, { signal, headers: { Accept: "text/event-stream" } });
  onOpen?.();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let type = "";
  let data = [];
  let id = "";
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch (error) {
      if (error?.name === "AbortError") throw error;
      throw new ApiError(0, { detail: "The event stream broke off." });
    }
    if (chunk.done) return; // an event without its closing blank line is dropped, as the spec says
    buffer += chunk.value;
    const lines = buffer.split(/\r\n|\r(?!$)|\n/); // a trailing \r waits: its \n may be in the next chunk
    buffer = lines.pop();
    for (const line of lines) {
      if (line === "") {
        if (data.length) onEvent({ type: type || "message", data: data.join("\n"), id });
        type = "";
        data = [];
        continue;
      }
      if (line.startsWith(":")) continue; // a comment (keep-alive)
      const colon = line.indexOf(":");
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") type = value;
      else if (field === "data") data.push(value);
      else if (field === "id" && !value.includes("\0")) id = value;
    }
  }
}

// A link to a file of the API (CSV, JSON, artifact). Following a link cannot send the API key, so with a stored
// key a click fetches the file with it and saves it from memory instead.
export function apiLink(href, text, filename) {
  const link = h("a", { href }, text);
  link.addEventListener("click", async (event) => {
    if (!storedKey()) return;
    event.preventDefault();
    try {
      const response = await apiFetch(href, { headers: { Accept: "*/*" } });
      const url = URL.createObjectURL(await response.blob());
      h("a", { href: url, download: filename }).click();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      link.title = "";
    } catch (error) {
      link.title = error.message;
      announce(`Cannot download ${filename}: ${error.message}`);
    }
  });
  return link;
}

// A chart the server draws (`chart` is its /v1/…/charts/{name} path), fetched as SVG with the API key and
// returned as a data: URL for an <img> (the page's policy allows no other image source).
export async function drawnChart(chart) {
  const query = `${chart.includes("?") ? "&" : "?"}format=svg`;
  const response = await apiFetch(`${chart}${query}`, { headers: { Accept: "image/svg+xml" } });
  const svg = await response.text();
  return `data:image/svg+xml;base64,${btoa(unescape(encodeURIComponent(svg)))}`;
}

// h("a", {href: "/ui"}, "Jobs"): an element with attributes and children (text is never parsed as HTML).
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

// Runs `task` now and again `ms` after each run ends, until it returns false; idle while the tab is hidden.
export function every(ms, task) {
  let timer = null;
  const run = async () => {
    timer = null;
    let again = true;
    if (!document.hidden) again = (await task()) !== false;
    if (again) timer = setTimeout(run, ms);
  };
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && timer !== null) {
      clearTimeout(timer);
      run();
    }
  });
  run();
}

// fn at most once per `ms`, however often it is asked for: a fast job streams many epochs a second.
export function throttled(fn, ms) {
  let last = 0;
  let timer = null;
  return () => {
    if (timer !== null) return;
    timer = setTimeout(
      () => {
        timer = null;
        last = Date.now();
        fn();
      },
      Math.max(0, last + ms - Date.now()),
    );
  };
}

export const fmt = (value) => formatNumber(value);
export const pct = (value) => (value === null || value === undefined ? "—" : `${(value * 100).toFixed(1)} %`);
export const isRatio = (key) => /accuracy|precision|recall|f1|sparsity/.test(key);
export const formatMetric = (key, value) => (isRatio(key) ? pct(value) : fmt(value));
export const ratioAxis = (value, step) =>
  step === undefined ? pct(value) : `${formatNumber(value * 100, step * 100)} %`;
export const shortId = (id) => id.slice(0, 8);
// A spec's number as a person would write it: 3 significant digits, e-notation below 0.001 (4.41e-5).
export const specNumber = (value) => {
  if (typeof value !== "number" || Number.isInteger(value)) return String(value);
  const rounded = Number(value.toPrecision(3));
  return rounded !== 0 && Math.abs(rounded) < 1e-3 ? rounded.toExponential() : String(rounded);
};
// Train minus validation score at the best epoch, sign kept: below zero, validation scores higher.
export const gapOf = (best, score) =>
  best[score.train] != null && best[score.val] != null ? best[score.train] - best[score.val] : null;
// The gap as text, with its sign always shown: "+2.8 %", "−2.7 %".
export const formatGap = (gap, score) =>
  gap === null ? "—" : gap > 0 ? `+${score.format(gap)}` : score.format(gap).replace("-", "\u2212");
export const titleOf = (job) => job.name || `Job ${shortId(job.id)}`;
export const humanize = (text) => (text ? text.replaceAll("_", " ") : "—");
const METRIC_NAMES = {
  train_loss: "Training loss",
  data_loss: "Training data loss",
  penalty: "Penalty",
  val_loss: "Validation loss",
  val_loss_se: "Validation loss standard error",
  train_accuracy: "Training accuracy",
  val_accuracy: "Validation accuracy",
  val_precision: "Validation precision",
  val_recall: "Validation recall",
  val_f1: "Validation F1",
  train_mae: "Training MAE",
  val_mae: "Validation MAE",
  val_rmse: "Validation RMSE",
  val_r2: "Validation R²",
  weight_l1: "Weight L1 (Σ|w|)",
  weight_l2: "Weight L2 (√Σw²)",
  sparsity: "Sparsity",
  weights_above_threshold: "Weights with |w| ≥ 1e-3",
  dead_units: "Dead ReLU units",
  saturated_units: "Saturated units",
  baseline_val_loss: "Constant-prediction validation loss",
  grad_norm: "Gradient norm",
  lr: "Learning rate",
  epoch_seconds: "Seconds per epoch",
  samples_per_second: "Samples per second",
};
export const metricName = (key) => METRIC_NAMES[key] || humanize(key);
export const TEST_NAMES = {
  loss: "Loss",
  loss_se: "Loss standard error",
  accuracy: "Accuracy",
  precision: "Precision",
  recall: "Recall",
  f1: "F1",
  mae: "MAE",
  rmse: "RMSE",
  r2: "R²",
};

export function scoreOf(task) {
  return task === "regression"
    ? { label: "MAE", word: "MAE", train: "train_mae", val: "val_mae", test: "mae", format: fmt, axis: undefined }
    : {
        label: "Accuracy",
        word: "accuracy",
        train: "train_accuracy",
        val: "val_accuracy",
        test: "accuracy",
        format: pct,
        axis: ratioAxis,
      };
}

export function ago(iso) {
  if (!iso) return "—";
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 10) return "just now";
  if (seconds < 60) return `${Math.round(seconds)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}

export function duration(job) {
  if (!job.started_at) return "—";
  const seconds = ((job.finished_at ? Date.parse(job.finished_at) : Date.now()) - Date.parse(job.started_at)) / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

export function badge(status) {
  return h("span", { class: `status status-${status}` }, h("span", { class: "dot", "aria-hidden": "true" }), status);
}

// "digits · MLP 128-64 relu · dropout 0.5 · batch norm · L2 1e-4 · adam lr 0.001 · batch 64"
export function specSummary(spec) {
  const m = spec.model || {};
  const r = spec.regularization || {};
  const dropout = Array.isArray(m.dropout) ? m.dropout.map(specNumber).join("/") : m.dropout && specNumber(m.dropout);
  const layers = m.type === "cnn" ? `CNN ${(m.conv_layers || []).map((c) => c.filters).join("-")}` : "MLP";
  return [
    spec.dataset?.name || `data set ${spec.dataset?.id ?? "?"}`,
    `${layers} ${(m.hidden_layers || []).join("-")} ${m.activation || ""}`.trim(),
    dropout ? `dropout ${dropout}` : null,
    m.batch_norm ? "batch norm" : null,
    r.l1 ? `L1 ${specNumber(r.l1)}` : null,
    r.l2 ? `L2 ${specNumber(r.l2)}` : null,
    r.max_norm ? `max-norm ${specNumber(r.max_norm)}` : null,
    r.label_smoothing ? `label smoothing ${specNumber(r.label_smoothing)}` : null,
    r.input_noise ? `input noise ${specNumber(r.input_noise)}` : null,
    spec.optimizer ? `${spec.optimizer.name} lr ${specNumber(spec.optimizer.lr)}` : null,
    spec.training ? `batch ${spec.training.batch_size}` : null,
  ]
    .filter(Boolean)
    .join(" · ");
}

// "trial #3 of sweep 1a2b3c4d", linking to the sweep's leaderboard, for a job that is a sweep's trial.
export function trialOf(job) {
  if (!job.sweep_id) return null;
  return h(
    "div",
    { class: "sub" },
    `trial #${job.trial_number} of `,
    h("a", { href: `/ui/sweeps/${job.sweep_id}` }, `sweep ${shortId(job.sweep_id)}`),
  );
}

export function notice(kind, title, detail, ...extra) {
  return h(
    "div",
    { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : "status" },
    h("strong", {}, title),
    detail ? h("p", {}, detail) : null,
    ...extra,
  );
}

// The notice for a failed API call; a refused or missing API key says how to give one.
export function errorNotice(title, error, retrying = false) {
  if (isAuthError(error)) {
    const ask = h(
      "button",
      { class: "button", type: "button", onclick: () => document.dispatchEvent(new Event("steadyfit:ask-key")) },
      "Enter an API key",
    );
    return notice("error", authTitle(), error.message, h("p", {}, ask));
  }
  return notice("error", title, retrying ? `${error.message} Retrying…` : error.message);
}

export function pageHeader(title, subtitle, ...actions) {
  document.title = `${title} · steadyfit`;
  return h(
    "div",
    { class: "page-header" },
    h("div", {}, h("h1", {}, title), subtitle ? h("p", { class: "subtitle" }, subtitle) : null),
    h("div", { class: "actions" }, ...actions),
  );
}

export function announce(text) {
  document.getElementById("announcer").textContent = text;
}

export function series(epochs, key, label, color, dashed = false) {
  return { label, color, dashed, values: epochs.map((e) => [e.epoch, e[key] ?? null]) };
}

export function chartCard(title, note, options = {}) {
  const body = h("div", { class: "chart", "data-chart": title });
  const logBox = options.log ? h("input", { type: "checkbox" }) : null;
  const control = logBox ? h("label", { class: "inline" }, logBox, " Log scale") : options.control;
  const card = h(
    "section",
    { class: "card chart-card" },
    h("div", { class: "card-head" }, h("h3", {}, title), control, note ? h("p", { class: "note" }, note) : null),
    body,
  );
  return { card, body, logBox };
}
