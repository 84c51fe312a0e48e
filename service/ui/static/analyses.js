// A finished job's analyses on its page: the pruning report as a table, the confusion matrix's per-class
// scores, and the loss landscape as the server draws it (a line and a heatmap).

import { api, drawnChart, fmt, h, pct } from "./common.js";

const section = (title, ...body) => h("section", { class: "card pad analysis" }, h("h3", {}, title), ...body);

function pruning(analysis) {
  if (analysis.status !== "succeeded") return section("Pruning", h("p", { class: "note" }, status(analysis)));
  const { levels, chosen_sparsity: chosen, weights_total: total } = analysis.result;
  const score = levels[0].test.accuracy !== undefined ? "accuracy" : "loss";
  return section(
    "Pruning",
    h("p", { class: "note" }, `Global magnitude pruning of the kept weights, no retraining; ${pct(chosen)} kept the validation ${score} within a point.`),
    h(
      "table",
      { class: "kv", "data-analysis": "pruning" },
      h("thead", {}, h("tr", {}, ["Sparsity", "Weights", `Validation ${score}`, `Test ${score}`].map((c) => h("th", {}, c)))),
      h(
        "tbody",
        {},
        levels.map((level) =>
          h(
            "tr",
            { class: level.sparsity === chosen ? "chosen" : null },
            h("td", {}, pct(level.sparsity)),
            h("td", { class: "num" }, `${level.weights.toLocaleString()} of ${total.toLocaleString()}`),
            h("td", { class: "num" }, fmt(level.validation[score])),
            h("td", { class: "num" }, fmt(level.test[score])),
          ),
        ),
      ),
    ),
  );
}

function confusion(analysis) {
  if (analysis.status !== "succeeded") return section("Per class", h("p", { class: "note" }, status(analysis)));
  return section(
    "Per class (test split)",
    h(
      "table",
      { class: "kv", "data-analysis": "confusion" },
      h("thead", {}, h("tr", {}, ["Class", "Precision", "Recall", "F1", "Support"].map((c) => h("th", {}, c)))),
      h(
        "tbody",
        {},
        analysis.result.per_class.map((c) =>
          h("tr", {}, h("td", {}, c.class), ...[c.precision, c.recall, c.f1].map((v) => h("td", { class: "num" }, fmt(v))), h("td", { class: "num" }, c.support)),
        ),
      ),
    ),
  );
}

async function landscape(job, analysis) {
  if (analysis.status !== "succeeded") return section("Loss landscape", h("p", { class: "note" }, status(analysis)));
  const src = await drawnChart(`/v1/jobs/${job.id}/charts/landscape`);
  return section("Loss landscape", h("img", { class: "path-chart", src, alt: "Loss along two random directions" }));
}

const status = (analysis) => (analysis.status === "failed" ? `Failed: ${analysis.error}` : `${analysis.status}…`);

export async function analysesSection(job) {
  const { items } = await api(`/v1/jobs/${job.id}/analyses`);
  const byKind = Object.fromEntries(items.map((a) => [a.kind, a]));
  const parts = [];
  if (byKind.pruning) parts.push(pruning(byKind.pruning));
  if (byKind.confusion) parts.push(confusion(byKind.confusion));
  if (byKind.landscape) parts.push(await landscape(job, byKind.landscape));
  return parts.length ? h("div", { class: "grid two analyses" }, parts) : "";
}
