// A job's log lines (GET /v1/jobs/{id}/logs), followed while it runs: the runner's and each epoch's lines,
// warnings, and a failure's traceback.

import { api, every, h, LIVE_POLL_MS, TERMINAL } from "./common.js";

export function logPanel(id) {
  const pre = h("pre", { class: "log", "data-log": "" });
  const card = h("details", { class: "card pad" }, h("summary", {}, "Log"), pre);
  let seen = 0;
  every(LIVE_POLL_MS, async () => {
    let page;
    try {
      page = await api(`/v1/jobs/${id}/logs?after=${seen}`);
    } catch {
      return true; // the job view says what is wrong; try again at the next tick
    }
    for (const line of page.items) {
      const stamp = new Date(line.created_at).toLocaleTimeString();
      pre.append(h("span", { class: `log-${line.level.toLowerCase()}` }, `${stamp} ${line.level} ${line.message}\n`));
      seen = line.seq;
      if (line.level === "ERROR") card.open = true;
    }
    return page.items.length > 0 || !TERMINAL.has(page.status);
  });
  return card;
}
