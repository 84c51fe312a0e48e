// The job list (live status, filters, selection for the compare view) and the form that submits a job.

import {
  ago,
  api,
  badge,
  errorNotice,
  every,
  fmt,
  h,
  humanize,
  isAuthError,
  LIST_POLL_MS,
  main,
  notice,
  pageHeader,
  params,
  scoreOf,
  specSummary,
  titleOf,
  trialOf,
} from "./common.js";

// The filter box's words as GET /v1/jobs parameters: a word with an operator (`model.dropout>=0.2`) is a
// `where`, any other `key:value` a `tag`. Words are separated by spaces.
function searchParams(text) {
  const query = new URLSearchParams();
  for (const word of text.split(/\s+/).filter(Boolean)) query.append(/[=<>]/.test(word) ? "where" : "tag", word);
  return query;
}

// The job list's own address with `changes` made to its query (null removes one).
function listHref(changes) {
  const query = new URLSearchParams(params);
  for (const [key, value] of Object.entries(changes)) {
    if (value) query.set(key, value);
    else query.delete(key);
  }
  return query.size ? `/ui?${query}` : "/ui";
}

// A job's project (other than `default`) and tags as chips; each one filters the list by itself.
function tagChips(job) {
  const words = Object.entries(job.tags || {}).map(([key, value]) => `${key}:${value}`);
  const filter = (params.get("q") || "").split(/\s+/).filter(Boolean);
  const chips = words.map((word) =>
    h("a", { class: "chip", "data-tag": word, href: listHref({ q: [...new Set([...filter, word])].join(" ") }) }, word),
  );
  if (job.project && job.project !== "default")
    chips.unshift(h("a", { class: "chip project", href: listHref({ project: job.project }) }, job.project));
  return chips.length ? h("div", { class: "chips" }, chips) : null;
}

function searchForm(project, text) {
  const select = h("select", { id: "project", name: "project" }, h("option", { value: "" }, "All projects"));
  const box = h("input", {
    id: "search",
    name: "q",
    type: "search",
    value: text,
    placeholder: "team:red model.dropout>=0.2",
    "aria-describedby": "search-help",
  });
  const form = h(
    "form",
    { class: "search", role: "search" },
    h("label", { for: "project" }, "Project"),
    select,
    h("label", { for: "search" }, "Filter"),
    box,
    h("button", { class: "button", type: "submit" }, "Apply"),
    h(
      "span",
      { id: "search-help", class: "hint" },
      "Tags as key:value, spec values as path operator value; every one must match. ",
      h("a", { href: "/docs#/jobs/list_jobs" }, "Syntax"),
    ),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    location.assign(listHref({ project: select.value, q: box.value.trim() }));
  });
  api("/v1/projects")
    .then((found) => {
      const names = found.items.map((item) => item.project);
      if (project && !names.includes(project)) names.push(project);
      select.append(...names.map((name) => h("option", { value: name, selected: name === project }, name)));
    })
    .catch(() => {}); // the list below shows what is wrong with the server
  return form;
}

export function jobsView() {
  const status = params.get("status");
  const project = params.get("project") || "";
  const text = params.get("q") || "";
  const search = searchParams(text);
  if (project) search.set("project", project);
  const selected = new Set();
  const compare = h("a", { class: "button" }, "Compare selected");
  const hint = h("span", { class: "hint" });
  const updateCompare = () => {
    if (selected.size >= 2) {
      compare.href = `/ui/compare?ids=${[...selected].join(",")}`;
      compare.removeAttribute("aria-disabled");
      hint.textContent = `${selected.size} selected`;
    } else {
      compare.removeAttribute("href");
      compare.setAttribute("aria-disabled", "true");
      hint.textContent = "Select two or more jobs to compare them.";
    }
  };
  updateCompare();

  const filters = h(
    "nav",
    { class: "filters", "aria-label": "Filter by status" },
    [null, "queued", "running", "succeeded", "failed", "cancelled"].map((s) =>
      h("a", { href: listHref({ status: s }), "aria-current": s === status ? "page" : null }, s || "all"),
    ),
  );
  const banner = h("div", { class: "banner-slot" });
  const tbody = h("tbody");
  const table = h(
    "table",
    { class: "jobs" },
    h("caption", { class: "sr-only" }, "Jobs, newest first"),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["", "Job", "Status", "Epochs", "Best epoch", "Best val loss", "Test score", "Stop reason", "Created"].map(
          (c, i) =>
            h(
              "th",
              { scope: "col", class: i >= 3 && i <= 6 ? "num" : null },
              i === 0 ? h("span", { class: "sr-only" }, "Select") : c,
            ),
        ),
      ),
    ),
    tbody,
  );
  const empty = h("div", { class: "empty", hidden: true });
  const more = h("p", { class: "note", hidden: true }, "Showing the 50 newest jobs.");
  main.replaceChildren(
    pageHeader(
      "Jobs",
      "Every training job on this server, newest first. Updates live.",
      hint,
      compare,
      h("a", { class: "button primary", href: "/ui/new" }, "New job"),
    ),
    searchForm(project, text),
    filters,
    banner,
    h("div", { class: "card table-card" }, table, empty),
    more,
  );

  const rows = new Map();
  const rowFor = (job) => {
    if (!rows.has(job.id)) {
      const box = h("input", { type: "checkbox", "aria-label": `Select ${titleOf(job)} for comparison` });
      box.addEventListener("change", () => {
        if (box.checked) selected.add(job.id);
        else selected.delete(job.id);
        updateCompare();
      });
      const cells = Array.from({ length: 8 }, (_, i) => h("td", { class: i >= 2 && i <= 5 ? "num" : null }));
      rows.set(job.id, { tr: h("tr", { "data-job": job.id }, h("td", {}, box), ...cells), cells });
    }
    const { tr, cells } = rows.get(job.id);
    const score = scoreOf(job.task);
    tr.dataset.status = job.status;
    cells[0].replaceChildren(
      ...[
        h("a", { href: `/ui/jobs/${job.id}` }, titleOf(job)),
        h("div", { class: "sub" }, specSummary(job.spec)),
        tagChips(job),
        trialOf(job),
      ].filter(Boolean),
    );
    cells[1].replaceChildren(badge(job.status));
    cells[2].textContent = job.epochs_completed;
    cells[3].textContent = job.best_epoch ?? "—";
    cells[4].textContent = fmt(job.best_metrics?.val_loss);
    cells[5].textContent = job.test_metrics ? `${score.word} ${score.format(job.test_metrics[score.test])}` : "—";
    cells[6].textContent = humanize(job.stop_reason);
    cells[7].replaceChildren(h("time", { datetime: job.created_at, title: job.created_at }, ago(job.created_at)));
    return tr;
  };

  every(LIST_POLL_MS, async () => {
    try {
      const query = new URLSearchParams(search);
      query.set("limit", "50");
      if (status) query.set("status", status);
      const page = await api(`/v1/jobs?${query}`);
      banner.replaceChildren();
      const wanted = page.items.map(rowFor);
      const ids = new Set(page.items.map((j) => j.id));
      for (const id of rows.keys()) if (!ids.has(id)) rows.delete(id);
      if (wanted.some((tr, i) => tbody.children[i] !== tr) || tbody.children.length !== wanted.length) {
        tbody.replaceChildren(...wanted);
      }
      table.hidden = !wanted.length;
      empty.hidden = wanted.length > 0;
      empty.replaceChildren(
        h("h2", {}, search.size ? "No jobs match" : status ? `No ${status} jobs` : "No jobs yet"),
        h(
          "p",
          {},
          search.size
            ? "No job has this project, these tags and these spec values."
            : status
              ? "Nothing in this state right now."
              : "Submit a job spec and its learning curves appear here.",
        ),
        h("a", { class: "button primary", href: "/ui/new" }, "Submit a job"),
      );
      more.hidden = !page.next_cursor;
    } catch (error) {
      banner.replaceChildren(errorNotice("Cannot load jobs", error, true));
    }
  });
}

const FALLBACK_SPEC = { name: "iris-quick", dataset: { name: "iris" }, training: { epochs: 50 } };

async function exampleSpec() {
  try {
    const schema = await api("/openapi.json");
    const examples = schema.paths["/v1/jobs"].post.requestBody.content["application/json"].examples;
    return Object.values(examples)[0].value;
  } catch {
    return FALLBACK_SPEC;
  }
}

// The JSON merge patch (RFC 7386) that turns `source` into `edited`: a removed field is a null.
function mergePatch(source, edited) {
  const isObject = (value) => value && typeof value === "object" && !Array.isArray(value);
  if (!isObject(source) || !isObject(edited)) return edited;
  const patch = {};
  for (const key of Object.keys(source)) if (!(key in edited)) patch[key] = null;
  for (const [key, value] of Object.entries(edited)) {
    if (JSON.stringify(value) !== JSON.stringify(source[key])) patch[key] = mergePatch(source[key], value);
  }
  return patch;
}

export function newJobView() {
  const area = h("textarea", {
    id: "spec",
    name: "spec",
    rows: 24,
    spellcheck: "false",
    "aria-describedby": "spec-help",
  });
  const result = h("div", { class: "banner-slot", "aria-live": "polite" });
  const submit = h("button", { class: "button primary", type: "submit" }, "Submit job");
  const form = h(
    "form",
    { class: "card form" },
    h("label", { for: "spec" }, "Job spec (JSON)"),
    h(
      "p",
      { id: "spec-help", class: "note" },
      "Every field but dataset has a default. The ",
      h("a", { href: "/docs#/jobs/create_job" }, "API reference"),
      " describes each one.",
    ),
    area,
    result,
    h(
      "div",
      { class: "actions" },
      submit,
      h(
        "button",
        {
          class: "button",
          type: "button",
          onclick: async () => {
            area.value = JSON.stringify(await exampleSpec(), null, 2);
          },
        },
        "Reset to the example",
      ),
    ),
  );
  const from = params.get("from"); // "Rerun with changes": the job's spec to edit, sent as a merge patch
  let source = null;
  main.replaceChildren(
    from
      ? pageHeader("Rerun with changes", `Edit the spec of job ${from.slice(0, 8)}; it is submitted as its rerun.`)
      : pageHeader("New job", "Send a spec; a worker trains it and the curves appear as epochs finish."),
    form,
  );
  (from ? api(`/v1/jobs/${from}`).then((job) => (source = job.spec)) : exampleSpec()).then((spec) => {
    if (!area.value) area.value = JSON.stringify(spec, null, 2);
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let spec;
    try {
      spec = JSON.parse(area.value);
    } catch (error) {
      result.replaceChildren(notice("error", "This is not valid JSON", error.message));
      return;
    }
    submit.disabled = true;
    submit.textContent = "Submitting…";
    try {
      const job = await api(source ? `/v1/jobs/${from}/rerun` : "/v1/jobs", {
        method: "POST",
        body: JSON.stringify(source ? mergePatch(source, spec) : spec),
        headers: { "Content-Type": "application/json" },
      });
      location.assign(`/ui/jobs/${job.id}`);
    } catch (error) {
      const errors = error.problem?.errors || [];
      result.replaceChildren(
        isAuthError(error)
          ? errorNotice("The server did not accept this spec", error)
          : notice(
              "error",
              "The server did not accept this spec",
              errors.length ? null : error.message,
              errors.length
                ? h(
                    "ul",
                    {},
                    errors.map((e) => h("li", {}, h("code", {}, e.field), ": ", e.message)),
                  )
                : null,
            ),
      );
      submit.disabled = false;
      submit.textContent = "Submit job";
    }
  });
}
