// Sweeps: the list, and each sweep's leaderboard of trials, on servers that have /v1/sweeps.

import {
  api,
  badge,
  drawnChart,
  errorNotice,
  every,
  fmt,
  formatMetric,
  h,
  humanize,
  isRatio,
  LIST_POLL_MS,
  main,
  metricName,
  notice,
  pageHeader,
  scoreOf,
  shortId,
  TERMINAL,
} from "./common.js";

const sweepsMissing = () =>
  notice(
    "info",
    "Sweeps are not available on this server",
    "This version of the API has no /v1/sweeps. Jobs and comparisons work as usual.",
    h("p", {}, h("a", { href: "/ui" }, "Back to jobs")),
  );

const sweepTitle = (sweep) => sweep.name || `Sweep ${shortId(sweep.id)}`;

function direction(objective) {
  if (objective.mode === "max" || objective.mode === "min") return objective.mode;
  return isRatio(objective.metric) || objective.metric.endsWith("r2") ? "max" : "min";
}

function trialCounts(sweep) {
  const counts = sweep.trials || {};
  const parts = ["running", "queued", "succeeded", "pruned", "failed", "cancelled"]
    .filter((k) => counts[k])
    .map((k) => `${counts[k]} ${k}`);
  return `${counts.total ?? 0} of ${sweep.max_trials ?? "?"} trials${parts.length ? ` (${parts.join(", ")})` : ""}`;
}

export function sweepsView() {
  main.replaceChildren(pageHeader("Sweeps", "Hyperparameter searches, newest first, with their best trials."));
  const body = h("div", { class: "card table-card" }, h("p", { class: "note pad" }, "Loading…"));
  main.append(body);
  const head = ["Sweep", "Status", "Search", "Trials", "Best objective", "Best trial"];
  every(LIST_POLL_MS, async () => {
    try {
      const { items } = await api("/v1/sweeps?limit=50");
      body.replaceChildren(
        items.length
          ? h(
              "table",
              { class: "jobs" },
              h("caption", { class: "sr-only" }, "Sweeps"),
              h(
                "thead",
                {},
                h(
                  "tr",
                  {},
                  head.map((c, i) => h("th", { scope: "col", class: i === 4 ? "num" : null }, c)),
                ),
              ),
              h(
                "tbody",
                {},
                items.map((s) =>
                  h(
                    "tr",
                    { "data-sweep": s.id },
                    h(
                      "td",
                      {},
                      h("a", { href: `/ui/sweeps/${s.id}` }, sweepTitle(s)),
                      h("div", { class: "sub" }, Object.keys(s.parameters || {}).join(", ")),
                    ),
                    h("td", {}, badge(s.status)),
                    h(
                      "td",
                      {},
                      `${s.algorithm}${s.pruner?.name && s.pruner.name !== "none" ? ` + ${s.pruner.name}` : ""}`,
                    ),
                    h("td", {}, trialCounts(s)),
                    h(
                      "td",
                      { class: "num" },
                      s.best_trial
                        ? `${metricName(s.objective.metric)} ${formatMetric(s.objective.metric, s.best_trial.objective)}`
                        : "—",
                    ),
                    h(
                      "td",
                      {},
                      s.best_trial
                        ? h("a", { href: `/ui/jobs/${s.best_trial.job_id}` }, `#${s.best_trial.number}`)
                        : "—",
                    ),
                  ),
                ),
              ),
            )
          : h(
              "div",
              { class: "empty" },
              h("h2", {}, "No sweeps yet"),
              h("p", {}, "Send a search space to POST /v1/sweeps; its trials and leaderboard appear here."),
            ),
      );
    } catch (error) {
      body.replaceChildren(
        error.status === 404 ? sweepsMissing() : errorNotice("Cannot load sweeps", error, true),
      );
      return error.status !== 404;
    }
  });
}

export function sweepView(id) {
  const head = h("div");
  const board = h("div", { class: "card table-card" }, h("p", { class: "note pad" }, "Loading…"));
  const insight = h("div", { class: "grid two sweep-insight" });
  main.replaceChildren(
    h(
      "nav",
      { class: "crumbs", "aria-label": "Breadcrumb" },
      h("a", { href: "/ui/sweeps" }, "Sweeps"),
      " / ",
      shortId(id),
    ),
    head,
    insight,
    board,
  );
  let drawnFor = -1; // the finished trials the chart and the importance were drawn for
  every(LIST_POLL_MS, async () => {
    try {
      const sweep = await api(`/v1/sweeps/${id}`);
      const { items } = await api(`/v1/sweeps/${id}/trials?sort=objective`);
      const goal = `${direction(sweep.objective) === "max" ? "maximize" : "minimize"} ${metricName(sweep.objective.metric)}`;
      head.replaceChildren(
        pageHeader(sweepTitle(sweep), `${sweep.algorithm} search · ${goal} · ${trialCounts(sweep)}`),
      );
      head.querySelector("h1").append(" ", badge(sweep.status));
      board.replaceChildren(leaderboard(sweep, items));
      const finished = items.filter((t) => t.objective !== null).length;
      if (finished !== drawnFor) {
        drawnFor = finished;
        insight.replaceChildren(...(await insights(sweep, finished)));
      }
      return !TERMINAL.has(sweep.status);
    } catch (error) {
      const missing = error.status === 404;
      board.replaceChildren(
        missing
          ? notice(
              "error",
              "No such sweep",
              `There is no sweep with id ${id} on this server.`,
              h("p", {}, h("a", { href: "/ui/sweeps" }, "All sweeps")),
            )
          : errorNotice("Cannot load this sweep", error, true),
      );
      return !missing;
    }
  });
}

// The trials as the API ranks them (best objective first, trials without one last).
function leaderboard(sweep, trials) {
  if (!trials.length)
    return h(
      "div",
      { class: "empty" },
      h("h2", {}, "No trials yet"),
      h("p", {}, "Trials appear here as they are queued."),
    );
  const metric = sweep.objective.metric;
  const names = Object.keys(sweep.parameters || {});
  const score = scoreOf(sweep.task);
  const ranked = trials
    .filter((t) => t.objective !== null)
    .slice(0, 3)
    .map((t) => t.job_id);
  const head = [
    "Rank",
    "Trial",
    ...names,
    metricName(metric),
    "Epochs",
    "Best epoch",
    `Test ${score.word}`,
    "Status",
    "Stop reason",
  ];
  const numeric = (i) => i >= 2 && i < head.length - 2;
  return h(
    "div",
    {},
    ranked.length >= 2
      ? h(
          "p",
          { class: "pad" },
          h("a", { class: "button", href: `/ui/compare?ids=${ranked.join(",")}` }, `Compare the top ${ranked.length}`),
        )
      : null,
    h(
      "table",
      { class: "jobs" },
      h("caption", { class: "sr-only" }, "Trials ranked by objective"),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          head.map((c, i) => h("th", { scope: "col", class: numeric(i) ? "num" : null }, c)),
        ),
      ),
      h(
        "tbody",
        {},
        trials.map((t, i) =>
          h(
            "tr",
            { "data-trial": t.number },
            h("td", {}, t.objective === null ? "—" : i + 1),
            h("td", {}, h("a", { href: `/ui/jobs/${t.job_id}` }, `#${t.number}`)),
            names.map((n) =>
              h(
                "td",
                { class: "num" },
                typeof t.params[n] === "number" ? fmt(t.params[n]) : JSON.stringify(t.params[n]),
              ),
            ),
            h("td", { class: "num" }, formatMetric(metric, t.objective)),
            h("td", { class: "num" }, t.epochs_completed),
            h("td", { class: "num" }, t.best_epoch ?? "—"),
            h("td", { class: "num" }, t.test_metrics ? score.format(t.test_metrics[score.test]) : "—"),
            h("td", {}, badge(t.status)),
            h("td", {}, humanize(t.stop_reason)),
          ),
        ),
      ),
    ),
  );
}

// Which parameters mattered (fANOVA shares, once 5 trials have trained to their end) and the parallel
// coordinates of the finished trials, their axes in the order of importance.
async function insights(sweep, finished) {
  if (finished < 2) return [];
  const [importance, src] = await Promise.all([
    api(`/v1/sweeps/${sweep.id}/importance`).catch((error) => (error.status === 409 ? null : Promise.reject(error))),
    drawnChart(`/v1/sweeps/${sweep.id}/charts/parallel_coordinates`),
  ]);
  const metric = metricName(sweep.objective.metric);
  const chart = h(
    "section",
    { class: "card" },
    h("h3", {}, "Trials across the parameters"),
    h("img", { class: "path-chart", src, alt: `Each finished trial's parameters and ${metric}` }),
  );
  const shares = h(
    "section",
    { class: "card", "data-importance": "" },
    h("h3", {}, "Parameter importance"),
    importance
      ? h(
          "div",
          {},
          h("p", { class: "note" }, `Each parameter's share of the variance of ${metric} over ${importance.trials} trials (fANOVA).`),
          importance.items.map((item) =>
            h(
              "div",
              { class: "share", "data-parameter": item.parameter },
              h("span", {}, item.parameter),
              h("meter", { min: 0, max: 1, value: item.importance, "aria-label": item.parameter }),
              h("span", { class: "num" }, `${(item.importance * 100).toFixed(0)} %`),
            ),
          ),
        )
      : h("p", { class: "note" }, "Shown once 5 trials have trained to their end."),
  );
  return [shares, chart];
}

