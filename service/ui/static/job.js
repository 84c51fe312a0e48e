// One job's page: live learning curves, regularization figures, early-stopping marks, summary and downloads.

import { PALETTE, lineChart } from "./chart.js";
import { analysesSection } from "./analyses.js";
import { logPanel } from "./logs.js";
import { DiagnosisCard } from "./diagnosis.js";
import {
  announce,
  api,
  apiLink,
  badge,
  chartCard,
  COLORS,
  duration,
  errorNotice,
  every,
  fmt,
  formatGap,
  formatMetric,
  gapOf,
  h,
  humanize,
  isAuthError,
  LIVE_POLL_MS,
  main,
  notice,
  pageHeader,
  params,
  ratioAxis,
  readEvents,
  scoreOf,
  series,
  shortId,
  specSummary,
  storedKey,
  TERMINAL,
  TEST_NAMES,
  throttled,
  titleOf,
  trialOf,
} from "./common.js";

const STREAM_RETRIES = 3;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Keeps a job and all its epochs up to date: from the event stream when the server has one, otherwise
// (or with ?live=poll) by polling /metrics?after_epoch=N. Either way the job summary is re-read each
// second, which the server answers with a cheap 304 while nothing changed. With an API key the stream is
// read with fetch() (EventSource cannot send the key); without one, with EventSource.
class JobFeed {
  constructor(id, onChange) {
    this.id = id;
    this.onChange = onChange;
    this.job = null;
    this.epochs = [];
    this.mode = "poll";
    this.source = null;
    // While epochs stream in, the summary (best epoch, best metrics) is re-read soon after each one.
    this.readJob = throttled(() => {
      api(`/v1/jobs/${this.id}`).then(
        (job) => {
          if (!TERMINAL.has(this.job?.status)) this.job = job;
          this.onChange();
        },
        () => {},
      );
    }, 500);
  }

  get last() {
    return this.epochs.length ? this.epochs.at(-1).epoch : 0;
  }

  add(items) {
    for (const item of items) if (item.epoch > this.last) this.epochs.push(item);
  }

  async readMetrics() {
    const page = await api(`/v1/jobs/${this.id}/metrics?after_epoch=${this.last}`);
    this.add(page.items);
  }

  async start() {
    await this.readMetrics();
    this.job = await api(`/v1/jobs/${this.id}`);
    this.onChange();
    if (TERMINAL.has(this.job.status)) return this.finish();
    if (params.get("live") !== "poll") {
      if (storedKey() && window.ReadableStream && window.TextDecoderStream) this.fetchStream();
      else if ("EventSource" in window) this.stream();
    }
    every(LIVE_POLL_MS, () => this.tick());
  }

  opened() {
    this.mode = "stream";
    this.onChange();
  }

  received(type, data) {
    if (type === "epoch") {
      this.add([JSON.parse(data)]);
      this.onChange();
      this.readJob();
    } else if (type === "status") {
      this.job = JSON.parse(data);
      if (TERMINAL.has(this.job.status)) this.finish();
      else this.onChange();
    }
  }

  streamGone() {
    this.source = null;
    if (this.mode === "stream") this.mode = "poll";
    this.onChange();
  }

  stream() {
    const source = new EventSource(`/v1/jobs/${this.id}/events?after_epoch=${this.last}`);
    this.source = source;
    source.addEventListener("open", () => this.opened());
    for (const type of ["epoch", "status"]) source.addEventListener(type, (event) => this.received(type, event.data));
    // At the stream's lifetime the server sends `reconnect` with `retry:` and ends it; EventSource comes back
    // by itself after that time, sending Last-Event-ID, so no epoch is lost or repeated.
    source.addEventListener("error", () => {
      // CLOSED: this server has no stream for us (or refused it); CONNECTING: the browser retries.
      if (source.readyState === EventSource.CLOSED) this.streamGone();
    });
  }

  // The same stream read with fetch(), which sends the API key. Like EventSource it reconnects after a broken
  // connection (resuming after the last epoch it has), and gives up for polling when the server refuses. A
  // `reconnect` event (the stream's lifetime is up) is no failure: it comes back after the time it names.
  async fetchStream() {
    const controller = new AbortController();
    const source = { close: () => controller.abort() };
    this.source = source;
    let failures = 0;
    while (this.source === source && failures < STREAM_RETRIES) {
      let retryMs = 0;
      try {
        await readEvents(`/v1/jobs/${this.id}/events?after_epoch=${this.last}`, {
          signal: controller.signal,
          onOpen: () => this.opened(),
          onEvent: (event) => {
            failures = 0;
            if (event.type === "reconnect") retryMs = JSON.parse(event.data).retry_ms;
            else this.received(event.type, event.data);
          },
        });
      } catch (error) {
        if (controller.signal.aborted) return;
        if (error.status >= 400) break; // no stream for us (or refused): poll instead
        retryMs = 0;
      }
      if (!retryMs) failures += 1; // ended or broke off before the final status: reconnect, but not for ever
      if (this.source === source) await sleep(retryMs || 1000);
    }
    if (this.source === source) this.streamGone();
  }

  async tick() {
    if (this.mode === "done") return false;
    try {
      // A queued job's place moves while its ETag stays: a revalidated copy would keep the old place.
      const fresh = this.job?.status === "queued" ? { cache: "no-store" } : {};
      this.job = await api(`/v1/jobs/${this.id}`, fresh);
      if (this.mode !== "stream") await this.readMetrics();
      this.error = null;
    } catch (error) {
      this.error = error;
    }
    if (this.job && TERMINAL.has(this.job.status)) {
      await this.finish();
      return false;
    }
    this.onChange();
    return true;
  }

  async finish() {
    this.source?.close();
    this.source = null;
    this.mode = "done";
    try {
      await this.readMetrics(); // an epoch that landed between the last read and the final status
    } catch (error) {
      this.error = error;
    }
    this.onChange();
  }
}

export function jobView(id) {
  const slot = {
    banner: h("div", { class: "banner-slot" }),
    header: h("div"),
    stats: h("div", { class: "stats" }),
    details: h("div", { class: "details" }),
  };
  const diagnosis = new DiagnosisCard(id);
  const charts = {
    loss: chartCard("Loss", "Training loss includes the penalty; validation loss is the data loss alone.", {
      log: true,
    }),
    score: chartCard("Accuracy", "Training batches (dropout on) against the validation split."),
    penalty: chartCard("Penalty", "The L1/L2 term added to the training loss."),
    l1: chartCard("Weight L1", "Σ|w| over Linear and Conv weights."),
    l2: chartCard("Weight L2", "√Σw² over Linear and Conv weights."),
    sparsity: chartCard("Sparsity", "Share of weights with |w| < 0.001."),
    lr: chartCard("Learning rate", null),
    grad: chartCard("Gradient norm", "Of the epoch's last step, before clipping."),
  };
  main.replaceChildren(
    h(
      "nav",
      { class: "crumbs", "aria-label": "Breadcrumb" },
      h("a", { href: "/ui" }, "Jobs"),
      " / ",
      h("span", {}, shortId(id)),
    ),
    slot.header,
    slot.banner,
    slot.stats,
    diagnosis.card,
    h("div", { class: "grid two" }, charts.loss.card, charts.score.card),
    h("h2", { class: "section" }, "Regularization"),
    h("div", { class: "grid four" }, charts.penalty.card, charts.l1.card, charts.l2.card, charts.sparsity.card),
    h("h2", { class: "section" }, "Optimization"),
    h("div", { class: "grid two" }, charts.lr.card, charts.grad.card),
    logPanel(id),
    slot.details,
  );

  let shownStatus = null;
  const feed = new JobFeed(
    id,
    throttled(() => {
      const job = feed.job;
      if (!job) return;
      main.dataset.live = feed.mode;
      if (shownStatus && shownStatus !== job.status) announce(`${titleOf(job)} is now ${job.status}.`);
      if (shownStatus !== job.status || !slot.header.firstChild) renderHeader(slot.header, job, feed);
      shownStatus = job.status;
      slot.header.querySelector(".live").replaceChildren(liveText(feed));
      slot.banner.replaceChildren(
        feed.error ? errorNotice("Lost contact with the API", feed.error, true) : "",
        job.status === "failed" ? notice("error", "Training failed", job.error || "No error message.") : "",
      );
      renderStats(slot.stats, job, feed.epochs);
      renderJobCharts(charts, job, feed.epochs, diagnosis.marker());
      diagnosis.update(job, feed.epochs).then((moved) => {
        if (moved) renderJobCharts(charts, feed.job, feed.epochs, diagnosis.marker());
      });
      if (TERMINAL.has(job.status) && !slot.details.dataset.done) renderDetails(slot.details, job);
    }, 250),
  );
  charts.loss.logBox.addEventListener("change", () =>
    renderJobCharts(charts, feed.job, feed.epochs, diagnosis.marker()),
  );
  feed.start().catch((error) => {
    main.replaceChildren(
      error.status === 404
        ? notice(
            "error",
            "No such job",
            `There is no job with id ${id}.`,
            h("p", {}, h("a", { href: "/ui" }, "Back to all jobs")),
          )
        : isAuthError(error)
          ? errorNotice("Cannot load this job", error)
          : notice(
              "error",
              "Cannot load this job",
              error.message,
              h("p", {}, h("a", { href: location.href }, "Try again")),
            ),
    );
  });
}

function liveText(feed) {
  if (feed.mode === "done") return "Final";
  if (feed.job?.status === "queued") return queuedText(feed.job);
  return feed.mode === "stream" ? "Live · streaming" : `Live · polling every ${LIVE_POLL_MS / 1000} s`;
}

function queuedText(job) {
  if (!job.queue_position) return "Waiting for a worker";
  const start = job.estimated_start ? ` · may start at ${new Date(job.estimated_start).toLocaleTimeString()}` : "";
  return `Waiting for a worker · place ${job.queue_position} in the queue${start}`;
}

// A finished job's spec again, as it is or edited first on the new-job page (POST /v1/jobs/{id}/rerun).
function rerunButtons(job) {
  const rerun = async (event) => {
    event.target.disabled = true;
    try {
      const created = await api(`/v1/jobs/${job.id}/rerun`, { method: "POST" });
      location.assign(`/ui/jobs/${created.id}`);
    } catch (error) {
      event.target.textContent = `Cannot rerun: ${error.message}`;
    }
  };
  return h(
    "div",
    { class: "actions" },
    h("button", { class: "button", type: "button", "data-rerun": "", onclick: rerun }, "Rerun"),
    h("a", { class: "button", href: `/ui/new?from=${job.id}` }, "Rerun with changes"),
  );
}

function renderHeader(slot, job, feed) {
  const cancel = TERMINAL.has(job.status)
    ? rerunButtons(job)
    : h(
        "button",
        {
          class: "button danger",
          type: "button",
          onclick: async (event) => {
            event.target.disabled = true;
            event.target.textContent = "Cancelling…";
            try {
              await api(`/v1/jobs/${job.id}/cancel`, { method: "POST" });
            } catch (error) {
              event.target.textContent = `Cannot cancel: ${error.message}`;
            }
          },
        },
        job.cancel_requested ? "Cancelling…" : "Cancel job",
      );
  const header = pageHeader(titleOf(job), null, cancel);
  header.querySelector("h1").append(" ", badge(job.status));
  header
    .querySelector("div")
    .append(
      ...[
        h("p", { class: "subtitle" }, specSummary(job.spec)),
        job.priority && job.priority !== "normal" ? h("p", { class: "subtitle" }, `Priority: ${job.priority}`) : null,
        trialOf(job),
        h("p", { class: "live", role: "status" }, liveText(feed)),
      ].filter(Boolean),
    );
  slot.replaceChildren(header);
}

function stat(label, value, detail) {
  return h(
    "div",
    { class: "stat" },
    h("span", { class: "label" }, label),
    h("span", { class: "value" }, value),
    detail ? h("span", { class: "detail" }, detail) : null,
  );
}

function renderStats(slot, job, epochs) {
  const score = scoreOf(job.task);
  const best = job.best_metrics || {};
  const spec = job.spec;
  const es = spec.early_stopping;
  const last = epochs.at(-1);
  const gap = gapOf(best, score);
  const sinceBest = job.best_epoch && last ? last.epoch - job.best_epoch : null;
  slot.replaceChildren(
    stat("Epoch", Math.max(job.epochs_completed, last?.epoch ?? 0), `of at most ${spec.training.epochs}`),
    stat("Best epoch", job.best_epoch ?? "—", best.val_loss !== undefined ? `val loss ${fmt(best.val_loss)}` : null),
    stat(`Validation ${score.word}`, score.format(best[score.val]), "at the best epoch"),
    stat("Train–val gap", formatGap(gap, score), `${score.word}, train minus validation, at the best epoch`),
    TERMINAL.has(job.status)
      ? stat("Stopped", last ? `epoch ${last.epoch}` : "—", humanize(job.stop_reason))
      : stat(
          "Early stopping",
          es ? `${sinceBest ?? 0} / ${es.patience}` : "off",
          es ? `epochs without a better ${es.monitor}` : "runs to the last epoch",
        ),
    stat(
      `Test ${score.word}`,
      job.test_metrics ? score.format(job.test_metrics[score.test]) : "—",
      job.test_metrics ? "with the kept weights" : "after training",
    ),
    stat(
      "Time",
      duration(job),
      last?.samples_per_second ? `${Math.round(last.samples_per_second).toLocaleString()} samples/s` : null,
    ),
  );
}

function marks(job, epochs) {
  const stop = TERMINAL.has(job.status) && epochs.length ? epochs.at(-1).epoch : null;
  if (stop !== null && stop === job.best_epoch) return [{ x: stop, label: `best = stop ${stop}`, kind: "best stop" }];
  const out = [];
  if (job.best_epoch) out.push({ x: job.best_epoch, label: `best ${job.best_epoch}`, kind: "best" });
  if (stop !== null) out.push({ x: stop, label: `stop ${stop}`, kind: "stop" });
  return out;
}

function renderJobCharts(charts, job, epochs, onset) {
  const score = scoreOf(job.task);
  const markers = [...marks(job, epochs), ...(onset ? [onset] : [])].sort((a, b) => a.x - b.x);
  const waiting = job.status === "queued" ? "Waiting for a worker to start this job…" : "Waiting for the first epoch…";
  const penalized = epochs.some((e) => e.penalty);
  const best = epochs.find((e) => e.epoch === job.best_epoch);
  const draw = (card, options) => lineChart(card.body, { markers, empty: waiting, ...options });
  draw(charts.loss, {
    title: "Loss",
    series: [
      series(epochs, "train_loss", "train", COLORS.train),
      ...(penalized ? [series(epochs, "data_loss", "train data loss", COLORS.train, true)] : []),
      series(epochs, "val_loss", "validation", COLORS.val),
    ],
    log: charts.loss.logBox.checked,
    points: best && best.val_loss !== null ? [{ x: best.epoch, y: best.val_loss, color: COLORS.best }] : [],
  });
  charts.score.card.querySelector("h3").textContent = score.label;
  draw(charts.score, {
    title: score.label,
    format: score.axis,
    series: [series(epochs, score.train, "train", COLORS.train), series(epochs, score.val, "validation", COLORS.val)],
  });
  const reg = job.spec.regularization || {};
  charts.penalty.card.querySelector(".note").textContent =
    penalized || reg.l1 || reg.l2
      ? `l1 = ${reg.l1 ?? 0}, l2 = ${reg.l2 ?? 0}: the term added to the training loss.`
      : "This spec has no L1 or L2 term, so the penalty is 0.";
  const small = { legend: false };
  draw(charts.penalty, { ...small, title: "Penalty", series: [series(epochs, "penalty", "penalty", PALETTE[4])] });
  draw(charts.l1, { ...small, title: "Weight L1", series: [series(epochs, "weight_l1", "Σ|w|", PALETTE[5])] });
  draw(charts.l2, { ...small, title: "Weight L2", series: [series(epochs, "weight_l2", "√Σw²", PALETTE[2])] });
  draw(charts.sparsity, {
    ...small,
    title: "Sparsity",
    format: ratioAxis,
    series: [series(epochs, "sparsity", "sparsity", PALETTE[7])],
  });
  draw(charts.lr, { ...small, title: "Learning rate", series: [series(epochs, "lr", "lr", PALETTE[3])] });
  draw(charts.grad, {
    ...small,
    title: "Gradient norm",
    series: [series(epochs, "grad_norm", "gradient norm", PALETTE[6])],
  });
}

async function renderDetails(slot, job) {
  slot.dataset.done = "true";
  const rows = Object.entries(job.test_metrics || {}).map(([k, v]) =>
    h("tr", {}, h("th", { scope: "row" }, TEST_NAMES[k] || humanize(k)), h("td", { class: "num" }, formatMetric(k, v))),
  );
  let files = [];
  let analyses = "";
  try {
    files = (await api(`/v1/jobs/${job.id}/artifacts`)).items;
    analyses = await analysesSection(job);
  } catch {
    files = files || [];
  }
  slot.replaceChildren(
    analyses,
    h(
      "div",
      { class: "grid two" },
      h(
        "section",
        { class: "card" },
        h("h3", {}, "Test metrics"),
        rows.length
          ? h("table", { class: "kv" }, h("tbody", {}, rows))
          : h("p", { class: "note" }, "No test metrics: the job did not finish training."),
      ),
      h(
        "section",
        { class: "card" },
        h("h3", {}, "Downloads"),
        h(
          "ul",
          { class: "links" },
          h("li", {}, apiLink(`/v1/jobs/${job.id}/metrics?format=csv`, "Metrics as CSV", `${job.id}-metrics.csv`)),
          h("li", {}, apiLink(`/v1/jobs/${job.id}`, "Job as JSON", `${job.id}.json`)),
          files.map((f) =>
            h(
              "li",
              {},
              apiLink(`/v1/jobs/${job.id}/artifacts/${f.name}`, f.name, f.name),
              ` (${(f.size_bytes / 1024).toFixed(0)} KiB)`,
            ),
          ),
        ),
      ),
    ),
    h(
      "details",
      { class: "card" },
      h("summary", {}, "Spec (normalized)"),
      h("pre", {}, JSON.stringify(job.spec, null, 2)),
    ),
  );
}
