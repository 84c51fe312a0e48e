// A job's diagnosis on its page: the verdict and its onset (also marked on the curves), the evidence, and
// each suggested spec change as a "Try it" button that submits the job's spec with that change.

import { api, errorNotice, fmt, h, humanize, TERMINAL } from "./common.js";

const VERDICTS = {
  good_fit: "Good fit",
  overfitting: "Overfitting",
  underfitting: "Underfitting",
  unstable: "Unstable",
};
const SHOWN = ["best_epoch", "noise", "rise", "final_gap", "train_to_baseline", "baseline_val_loss", "dead_units"];

// The spec with each dotted path of `changes` set (a section the spec left out, or null, is created).
export function withChanges(spec, changes) {
  const changed = structuredClone(spec);
  for (const [path, value] of Object.entries(changes)) {
    const parts = path.split(".");
    let node = changed;
    for (const part of parts.slice(0, -1)) {
      if (node[part] === null || typeof node[part] !== "object") node[part] = {};
      node = node[part];
    }
    node[parts.at(-1)] = value;
  }
  return changed;
}

export class DiagnosisCard {
  constructor(jobId) {
    this.jobId = jobId;
    this.card = h("section", { class: "card pad diagnosis", "aria-live": "polite" });
    this.onset = null;
    this.verdict = null;
    this.readAt = null; // the epoch count and status of the last read: read again only when they change
  }

  async update(job, epochs) {
    const at = `${epochs.length}/${job.status}`;
    if (at === this.readAt) return false;
    this.readAt = at;
    try {
      const found = await api(`/v1/jobs/${this.jobId}/diagnosis`);
      const moved = found.onset_epoch !== this.onset;
      this.onset = found.onset_epoch;
      this.verdict = found.verdict;
      this.render(found, job);
      return moved;
    } catch (error) {
      this.card.replaceChildren(errorNotice("Cannot diagnose this job", error, !TERMINAL.has(job.status)));
      return false;
    }
  }

  marker() {
    if (this.onset === null) return null;
    return { x: this.onset, label: `${humanize(this.verdict)} from ${this.onset}`, kind: "onset" };
  }

  render(found, job) {
    const onset = found.onset_epoch === null ? "" : ` from epoch ${found.onset_epoch}`;
    const evidence = SHOWN.filter((key) => found.evidence[key] !== undefined && found.evidence[key] !== null);
    this.card.replaceChildren(
      h(
        "h2",
        {},
        "Diagnosis: ",
        h("span", { class: `verdict ${found.verdict}`, "data-verdict": found.verdict }, VERDICTS[found.verdict]),
        onset,
        found.final ? "" : h("span", { class: "note" }, " (so far)"),
      ),
      evidence.length
        ? h("p", { class: "note" }, evidence.map((key) => `${humanize(key)} ${fmt(found.evidence[key])}`).join(" · "))
        : "",
      found.suggestions.length
        ? h(
            "ul",
            { class: "suggestions" },
            found.suggestions.map((suggestion, i) =>
              h(
                "li",
                {},
                h(
                  "code",
                  {},
                  Object.entries(suggestion.changes)
                    .map(([path, value]) => `${path} = ${JSON.stringify(value)}`)
                    .join(", "),
                ),
                " ",
                h("span", { class: "note" }, suggestion.reason),
                " ",
                h(
                  "button",
                  {
                    class: "button small",
                    type: "button",
                    "data-try": i + 1,
                    onclick: (event) => this.tryIt(event.target, job, suggestion.changes, i + 1),
                  },
                  "Try it",
                ),
              ),
            ),
          )
        : "",
    );
  }

  async tryIt(button, job, changes, number) {
    button.disabled = true;
    const name = `${job.name || job.id.slice(0, 8)} · try ${number}`.slice(0, 200);
    try {
      const created = await api("/v1/jobs", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ ...withChanges(job.spec, changes), name }),
      });
      location.assign(`/ui/jobs/${created.id}`);
    } catch (error) {
      button.disabled = false;
      button.after(errorNotice("The server did not take this spec", error));
    }
  }
}
