// The compare view: several jobs overlaid on one chart per metric, named by the spec fields that differ.

import { PALETTE, lineChart } from "./chart.js";
import {
  api,
  drawnChart,
  badge,
  chartCard,
  errorNotice,
  every,
  fmt,
  formatGap,
  gapOf,
  h,
  humanize,
  isAuthError,
  isRatio,
  LIST_POLL_MS,
  main,
  metricName,
  notice,
  pageHeader,
  params,
  ratioAxis,
  scoreOf,
  series,
  specNumber,
  TERMINAL,
  titleOf,
} from "./common.js";

// A spec as {dotted field: value as written in the spec}; a block that is null stays one field.
function flatten(value, prefix = "", out = {}) {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else out[prefix] = typeof value === "number" ? specNumber(value) : JSON.stringify(value);
  return out;
}

// A field's value, "default" where the spec leaves it out or sets it to null (a block left out included).
const valueOf = (fields, key) => (fields[key] === undefined || fields[key] === "null" ? "default" : fields[key]);

// The spec fields in which the jobs differ, e.g. ["model.dropout"].
function differences(flat) {
  const keys = new Set(flat.flatMap(Object.keys));
  return [...keys].filter((k) => k !== "name" && new Set(flat.map((f) => valueOf(f, k))).size > 1);
}

// One job's side of the differences: "model.dropout = 0.2". A field the spec leaves out or sets to null
// reads "default", and a block it leaves out is named once ("early_stopping = default"), not field by field;
// a block it has is told by its fields.
function describe(fields, diff) {
  const labels = diff.flatMap((key) => {
    if (valueOf(fields, key) !== "default") return [`${key} = ${fields[key]}`];
    if (Object.keys(fields).some((field) => field.startsWith(`${key}.`))) return [];
    const parts = key.split(".");
    const block = parts.map((_, i) => parts.slice(0, i + 1).join(".")).find((p) => fields[p] === "null");
    return [`${block ?? key} = default`];
  });
  return [...new Set(labels)].join(", ");
}

export function compareView() {
  const ids = (params.get("ids") || "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .slice(0, PALETTE.length);
  if (!ids.length) {
    main.replaceChildren(
      pageHeader("Compare", "Overlay the learning curves of several jobs."),
      h(
        "div",
        { class: "card empty" },
        h("h2", {}, "No jobs selected"),
        h("p", {}, "Tick two or more jobs on the Jobs page, then choose Compare selected."),
        h("a", { class: "button primary", href: "/ui" }, "Choose jobs"),
      ),
    );
    return;
  }
  const jobs = new Map(ids.map((id, i) => [id, { id, color: PALETTE[i], job: null, epochs: [] }]));
  const banner = h("div", { class: "banner-slot" });
  const legendSlot = h("div");
  const tableSlot = h("div", { class: "card table-card" });
  const parallelSlot = h("div", { class: "parallel-slot" });
  let drawnFor = ""; // the jobs with a best validation loss when the parallel coordinates were drawn
  const other = h("select", { id: "other-metric" });
  const cards = {
    val_loss: chartCard(
      "Validation loss",
      "Data loss on the validation split; the ringed point is each job's best epoch.",
      { log: true },
    ),
    val_score: chartCard("Validation accuracy", "On the validation split, epoch by epoch."),
    train_loss: chartCard("Training loss", "Includes each job's penalty.", { log: true }),
    other: chartCard("Other metric", "Any per-epoch metric, for every job.", {
      control: h("label", { class: "inline" }, "Metric ", other),
    }),
  };
  main.replaceChildren(
    pageHeader("Compare", `${ids.length} jobs on one chart. Updates live while any is running.`),
    banner,
    legendSlot,
    h("div", { class: "grid two" }, ...Object.values(cards).map((c) => c.card)),
    parallelSlot,
    tableSlot,
  );

  const render = () => {
    const entries = [...jobs.values()].filter((e) => e.job);
    if (!entries.length) return;
    const fields = new Map(entries.map((e) => [e, flatten(e.job.spec)]));
    const diff = differences([...fields.values()]);
    legendSlot.replaceChildren(
      h(
        "ul",
        { class: "legend big", "aria-label": "Jobs" },
        entries.map((e) =>
          h(
            "li",
            {},
            h("span", { class: "swatch", "data-color": e.color }),
            h("a", { href: `/ui/jobs/${e.id}` }, titleOf(e.job)),
            diff.length ? h("span", { class: "sub" }, ` ${describe(fields.get(e), diff)}`) : null,
            " ",
            badge(e.job.status),
          ),
        ),
      ),
    );
    for (const swatch of legendSlot.querySelectorAll("[data-color]"))
      swatch.style.setProperty("--color", swatch.dataset.color);

    const score = scoreOf(entries[0].job.task);
    cards.val_score.card.querySelector("h3").textContent = `Validation ${score.word}`;
    const overlay = (key) => entries.map((e) => series(e.epochs, key, titleOf(e.job), e.color));
    const bestPoints = entries.flatMap((e) => {
      const best = e.epochs.find((x) => x.epoch === e.job.best_epoch);
      return best && best.val_loss !== null ? [{ x: best.epoch, y: best.val_loss, color: e.color }] : [];
    });
    const common = { legend: false, empty: "Waiting for the first epoch…" };
    lineChart(cards.val_loss.body, {
      ...common,
      title: "Validation loss",
      series: overlay("val_loss"),
      points: bestPoints,
      log: cards.val_loss.logBox.checked,
    });
    lineChart(cards.val_score.body, {
      ...common,
      title: "Validation score",
      format: score.axis,
      series: overlay(score.val),
    });
    lineChart(cards.train_loss.body, {
      ...common,
      title: "Training loss",
      series: overlay("train_loss"),
      log: cards.train_loss.logBox.checked,
    });

    const keys = [...new Set(entries.flatMap((e) => Object.keys(e.epochs[0] || {})))]
      .filter((k) => k !== "epoch")
      .sort();
    if (keys.length && other.options.length !== keys.length) {
      const current = other.value || (keys.includes("weight_l2") ? "weight_l2" : keys[0]);
      other.replaceChildren(...keys.map((k) => h("option", { value: k, selected: k === current }, metricName(k))));
    }
    if (other.value) {
      cards.other.card.querySelector("h3").textContent = metricName(other.value);
      lineChart(cards.other.body, {
        ...common,
        title: metricName(other.value),
        series: overlay(other.value),
        format: isRatio(other.value) ? ratioAxis : undefined,
      });
    }
    tableSlot.replaceChildren(compareTable(entries, score));
  };
  for (const control of [other, cards.val_loss.logBox, cards.train_loss.logBox])
    control.addEventListener("change", render);

  // The compared jobs across the spec fields in which they differ and their best validation loss, drawn by
  // the server, again whenever another job has a best epoch.
  const drawParallel = async () => {
    const ready = [...jobs.values()].filter((e) => e.job?.best_metrics?.val_loss != null).map((e) => e.id);
    if (ready.length < 2 || ready.join() === drawnFor) return;
    drawnFor = ready.join();
    try {
      const src = await drawnChart(`/v1/charts/parallel_coordinates?${ready.map((id) => `job_ids=${id}`).join("&")}`);
      parallelSlot.replaceChildren(
        h(
          "section",
          { class: "card" },
          h("h3", {}, "Spec fields against the best validation loss"),
          h("img", { class: "path-chart", src, alt: "Each job's differing spec fields and best validation loss" }),
        ),
      );
    } catch (error) {
      parallelSlot.replaceChildren(errorNotice("Cannot draw the parallel coordinates", error));
    }
  };

  every(LIST_POLL_MS, async () => {
    const active = [...jobs.values()].filter((e) => !e.job || !TERMINAL.has(e.job.status));
    const problems = [];
    let refused = null;
    await Promise.all(
      active.map(async (e) => {
        try {
          // The job before its epochs: a job read as finished has all of its epochs written already.
          e.job = await api(`/v1/jobs/${e.id}`);
          const last = e.epochs.at(-1)?.epoch ?? 0;
          const page = await api(`/v1/jobs/${e.id}/metrics?after_epoch=${last}`);
          e.epochs.push(...page.items.filter((x) => x.epoch > last));
        } catch (error) {
          if (isAuthError(error)) refused = error;
          else problems.push(error.status === 404 ? `No job with id ${e.id}.` : error.message);
          if (error.status === 404) jobs.delete(e.id);
        }
      }),
    );
    banner.replaceChildren(
      ...(refused ? [errorNotice("Cannot load these jobs", refused)] : []),
      ...problems.map((p) => notice("error", "Some jobs could not be loaded", p)),
    );
    render();
    await drawParallel();
    return [...jobs.values()].some((e) => !e.job || !TERMINAL.has(e.job.status));
  });
}

function compareTable(entries, score) {
  const head = [
    "Job",
    "Status",
    "Epochs",
    "Best epoch",
    "Best val loss",
    `Val ${score.word}`,
    "Train–val gap",
    `Test ${score.word}`,
    "Stop reason",
  ];
  return h(
    "table",
    { class: "jobs" },
    h("caption", { class: "sr-only" }, "The compared jobs"),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        head.map((c, i) => h("th", { scope: "col", class: i >= 2 && i <= 7 ? "num" : null }, c)),
      ),
    ),
    h(
      "tbody",
      {},
      entries.map((e) => {
        const best = e.job.best_metrics || {};
        const gap = gapOf(best, score);
        const swatch = h("span", { class: "swatch" });
        swatch.style.setProperty("--color", e.color);
        return h(
          "tr",
          {},
          h("td", {}, swatch, h("a", { href: `/ui/jobs/${e.id}` }, titleOf(e.job))),
          h("td", {}, badge(e.job.status)),
          h("td", { class: "num" }, e.job.epochs_completed),
          h("td", { class: "num" }, e.job.best_epoch ?? "—"),
          h("td", { class: "num" }, fmt(best.val_loss)),
          h("td", { class: "num" }, score.format(best[score.val])),
          h("td", { class: "num" }, formatGap(gap, score)),
          h("td", { class: "num" }, e.job.test_metrics ? score.format(e.job.test_metrics[score.test]) : "—"),
          h("td", {}, humanize(e.job.stop_reason)),
        );
      }),
    ),
  );
}
