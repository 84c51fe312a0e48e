// Models: weights uploaded with their architecture, or saved from a job, newest first. A job starts from one
// with "init_from": {"model_id": ...}; one saved from a job also answers POST /v1/models/{id}/predict.

import { api, errorNotice, every, h, LIST_POLL_MS, main, pageHeader, shortId } from "./common.js";

const architecture = (model) => {
  const block = model.model;
  const convs = (block.conv_layers || []).map((c) => `conv ${c.filters}`);
  return [...convs, ...(block.hidden_layers || []).map(String), String(model.outputs)].join(" → ");
};

const source = (model) =>
  model.source === "job" ? h("a", { href: `/ui/jobs/${model.job_id}` }, `job ${shortId(model.job_id)}`) : "upload";

export function modelsView() {
  main.replaceChildren(
    pageHeader("Models", "Weights to start jobs from (init_from.model_id); saved from a job, they also predict."),
  );
  const body = h("div", { class: "card table-card" }, h("p", { class: "note pad" }, "Loading…"));
  main.append(body);
  every(LIST_POLL_MS, async () => {
    try {
      const { items } = await api("/v1/models?limit=50");
      const columns = ["Model", "Source", "Input", "Layers", "Parameters", "Predicts", "Created"];
      body.replaceChildren(
        items.length
          ? h(
              "table",
              { class: "jobs" },
              h("caption", { class: "sr-only" }, "Models"),
              h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))),
              h(
                "tbody",
                {},
                items.map((m) =>
                  h(
                    "tr",
                    { "data-model": m.id },
                    h("td", {}, h("code", {}, m.name || shortId(m.id))),
                    h("td", {}, source(m)),
                    h("td", {}, m.input_shape.join(" × ")),
                    h("td", {}, architecture(m)),
                    h("td", {}, m.parameters.toLocaleString()),
                    h("td", {}, m.predictable ? "yes" : "no"),
                    h("td", {}, new Date(m.created_at).toLocaleString()),
                  ),
                ),
              ),
            )
          : h(
              "div",
              { class: "empty" },
              h("h2", {}, "No models yet"),
              h("p", {}, "Save a finished job with POST /v1/jobs/{id}/model, or upload weights to POST /v1/models."),
            ),
      );
    } catch (error) {
      body.replaceChildren(errorNotice("Cannot load models", error, true));
    }
  });
}
