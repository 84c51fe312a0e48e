// The steadyfit dashboard: every view is a real address under /ui, served by the same page; this picks the
// view from the path. It reads the public REST API only and loads nothing from elsewhere; no build step.

import { compareView } from "./compare.js";
import { jobView } from "./job.js";
import { jobsView, newJobView } from "./jobs.js";
import { main, notice, h } from "./common.js";
import { sweepView, sweepsView } from "./sweeps.js";

const ROUTES = [
  [/^\/ui\/?$/, jobsView, "jobs"],
  [/^\/ui\/new\/?$/, newJobView, "new"],
  [/^\/ui\/jobs\/([^/]+)\/?$/, jobView, "jobs"],
  [/^\/ui\/compare\/?$/, compareView, "compare"],
  [/^\/ui\/sweeps\/?$/, sweepsView, "sweeps"],
  [/^\/ui\/sweeps\/([^/]+)\/?$/, sweepView, "sweeps"],
];

function start() {
  const route = ROUTES.find(([pattern]) => pattern.test(location.pathname));
  if (!route) {
    main.replaceChildren(notice("error", "No such page", null, h("p", {}, h("a", { href: "/ui" }, "Back to jobs"))));
    return;
  }
  const [pattern, view, section] = route;
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === section) link.setAttribute("aria-current", "page");
  }
  view(...location.pathname.match(pattern).slice(1).map(decodeURIComponent));
  // The sweeps link appears only on a server that has sweeps.
  fetch("/v1/sweeps?limit=1", { headers: { Accept: "application/json" } })
    .then((response) => response.ok)
    .catch(() => false)
    .then((found) => {
      document.querySelector("[data-nav=sweeps]").hidden = !found;
      document.body.dataset.sweeps = found ? "yes" : "no";
    });
}

start();
