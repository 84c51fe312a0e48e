// Regularization paths: the list, and each path's chart (validation loss and sparsity against the strength,
// drawn by the server from the same Vega-Lite spec any client gets) and its table of points.

import { api, badge, drawnChart, errorNotice, every, fmt, h, LIST_POLL_MS, main, notice, pageHeader, shortId, TERMINAL } from "./common.js";

const number = (v) => (v === null || v === undefined ? "—" : fmt(v));
const pathTitle = (path) => path.name || `Path ${shortId(path.id)}`;
const ended = (path) => path.points.filter((p) => TERMINAL.has(p.status)).length;
const progress = (path) => `${path.parameter} · ${ended(path)} of ${path.values.length} points ended`;
const chosen = (path) =>
  path.best ? `best ${fmt(path.best.value)} · 1-SE ${fmt(path.one_se.value)}` : "no point has finished yet";

export function pathsView() {
  main.replaceChildren(pageHeader("Paths", "Regularization paths, newest first: one strength at several values."));
  const body = h("div", { class: "card table-card" }, h("p", { class: "note pad" }, "Loading…"));
  main.append(body);
  every(LIST_POLL_MS, async () => {
    try {
      const { items } = await api("/v1/paths?limit=50");
      body.replaceChildren(
        items.length
          ? h(
              "table",
              { class: "jobs" },
              h("caption", { class: "sr-only" }, "Paths"),
              h("thead", {}, h("tr", {}, ["Path", "Status", "Points", "Chosen"].map((c) => h("th", { scope: "col" }, c)))),
              h(
                "tbody",
                {},
                items.map((p) =>
                  h(
                    "tr",
                    { "data-path": p.id },
                    h("td", {}, h("a", { href: `/ui/paths/${p.id}` }, pathTitle(p))),
                    h("td", {}, badge(p.status)),
                    h("td", {}, progress(p)),
                    h("td", {}, chosen(p)),
                  ),
                ),
              ),
            )
          : h(
              "div",
              { class: "empty" },
              h("h2", {}, "No paths yet"),
              h("p", {}, "Send a base spec and one strength to POST /v1/paths; its points appear here."),
            ),
      );
    } catch (error) {
      body.replaceChildren(errorNotice("Cannot load paths", error, true));
    }
  });
}

export function pathView(id) {
  const head = h("div");
  const chart = h("div", { class: "card pad" }, h("p", { class: "note" }, "Loading…"));
  const table = h("div", { class: "card table-card" });
  main.replaceChildren(
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "/ui/paths" }, "Paths"), " / ", shortId(id)),
    head,
    chart,
    table,
  );
  let drawn = -1;
  every(LIST_POLL_MS, async () => {
    try {
      const path = await api(`/v1/paths/${id}`);
      head.replaceChildren(pageHeader(pathTitle(path), `${progress(path)} · ${chosen(path)}`));
      head.querySelector("h1").append(" ", badge(path.status));
      table.replaceChildren(points(path));
      if (ended(path) !== drawn) {
        drawn = ended(path);
        chart.replaceChildren(await drawing(id, path));
      }
      return !TERMINAL.has(path.status);
    } catch (error) {
      const missing = error.status === 404;
      table.replaceChildren(
        missing
          ? notice("error", "No such path", `There is no path with id ${id} on this server.`)
          : errorNotice("Cannot load this path", error, true),
      );
      return !missing;
    }
  });
}

async function drawing(id, path) {
  const src = await drawnChart(`/v1/paths/${id}/charts/path`);
  return h("img", { class: "path-chart", src, alt: `Validation loss and sparsity against ${path.parameter}` });
}

function points(path) {
  const head = [path.parameter, "Validation loss", "± SE", "Gap", "Sparsity", "|w| ≥ 1e-3", "Test", "Status", ""];
  const mark = (p) =>
    [path.best?.job_id === p.job_id ? "best" : null, path.one_se?.job_id === p.job_id ? "1-SE" : null]
      .filter(Boolean)
      .join(", ");
  const test = (p) => p.test_metrics?.accuracy ?? p.test_metrics?.r2;
  return h(
    "table",
    { class: "jobs" },
    h("caption", { class: "sr-only" }, "The path's points"),
    h("thead", {}, h("tr", {}, head.map((c) => h("th", { scope: "col" }, c)))),
    h(
      "tbody",
      {},
      path.points.map((p) =>
        h(
          "tr",
          { "data-point": p.value },
          h("td", { class: "num" }, h("a", { href: `/ui/jobs/${p.job_id}` }, fmt(p.value))),
          [p.val_loss, p.val_loss_se, p.gap, p.sparsity].map((v) => h("td", { class: "num" }, number(v))),
          h("td", { class: "num" }, p.weights_above_threshold?.toLocaleString() ?? "—"),
          h("td", { class: "num" }, number(test(p))),
          h("td", {}, badge(p.status)),
          h("td", {}, mark(p)),
        ),
      ),
    ),
  );
}
