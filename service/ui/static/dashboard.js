// The steadyfit dashboard: every view is a real address under /ui, served by the same page; this picks the
// view from the path. It reads the public REST API only and loads nothing from elsewhere; no build step.
// It also keeps the API key control in the page header: who the stored key acts for, and how to change it.

import { compareView } from "./compare.js";
import { jobView } from "./job.js";
import { jobsView, newJobView } from "./jobs.js";
import { api, authTitle, h, isAuthError, main, notice, storedKey, storeKey } from "./common.js";
import { modelsView } from "./models.js";
import { pathView, pathsView } from "./paths.js";
import { sweepView, sweepsView } from "./sweeps.js";

const ROUTES = [
  [/^\/ui\/?$/, jobsView, "jobs"],
  [/^\/ui\/new\/?$/, newJobView, "new"],
  [/^\/ui\/jobs\/([^/]+)\/?$/, jobView, "jobs"],
  [/^\/ui\/compare\/?$/, compareView, "compare"],
  [/^\/ui\/sweeps\/?$/, sweepsView, "sweeps"],
  [/^\/ui\/sweeps\/([^/]+)\/?$/, sweepView, "sweeps"],
  [/^\/ui\/paths\/?$/, pathsView, "paths"],
  [/^\/ui\/paths\/([^/]+)\/?$/, pathView, "paths"],
  [/^\/ui\/models\/?$/, modelsView, "models"],
];

const keybox = document.getElementById("keybox");
let identity = { me: null, error: null };
let keepFormOnKeyChange = false;

// GET /v1/me: who the stored key (or no key, on a server without keys) acts for.
async function whoAmI() {
  try {
    identity = { me: await api("/v1/me"), error: null };
  } catch (error) {
    identity = { me: null, error };
  }
  return identity;
}

function keyChanged() {
  // Another key may see other jobs: every view starts over with it, except a form that may hold a typed spec.
  if (keepFormOnKeyChange) whoAmI().then(() => renderKeybox());
  else location.reload();
}

function renderKeybox(asking = false) {
  const { me, error } = identity;
  const key = storedKey();
  const forget = key
    ? h(
        "button",
        {
          id: "forget-key",
          class: "button small",
          type: "button",
          title: "Remove the API key from this browser",
          onclick: () => {
            storeKey("");
            keyChanged();
          },
        },
        "Forget key",
      )
    : null;
  if (me && !asking) {
    const who = h(
      "span",
      {
        id: "whoami",
        class: "whoami",
        title: key ? "The owner of the stored API key" : "This server needs no API key",
      },
      me.owner,
      me.admin ? h("span", { class: "tag" }, "admin") : null,
    );
    keybox.replaceChildren(who, forget || "");
    return;
  }
  const input = h("input", {
    id: "api-key",
    type: "password",
    placeholder: "API key",
    autocomplete: "off",
    spellcheck: "false",
    "aria-label": "API key",
    required: true,
  });
  const form = h(
    "form",
    {
      id: "key-form",
      class: "keyform",
      onsubmit: (event) => {
        event.preventDefault();
        const value = input.value.trim();
        if (!value) return;
        storeKey(value);
        keyChanged();
      },
    },
    key && isAuthError(error) ? h("span", { class: "refused", role: "status" }, "Key not accepted") : null,
    input,
    h("button", { class: "button small", type: "submit" }, "Use key"),
  );
  keybox.replaceChildren(form, forget || "");
  if (asking) input.focus();
}

function keyPrompt(error) {
  return notice(
    "error",
    authTitle(),
    error.message,
    h(
      "p",
      { class: "note" },
      "An administrator creates keys with ",
      h("code", {}, "steadyfit keys create --owner NAME"),
      ". The key stays in this browser until you forget it.",
    ),
  );
}

async function start() {
  renderKeybox();
  document.addEventListener("steadyfit:ask-key", () => renderKeybox(true));
  const route = ROUTES.find(([pattern]) => pattern.test(location.pathname));
  if (!route) {
    main.replaceChildren(notice("error", "No such page", null, h("p", {}, h("a", { href: "/ui" }, "Back to jobs"))));
    return;
  }
  const [pattern, view, section] = route;
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === section) link.setAttribute("aria-current", "page");
  }
  const { error } = await whoAmI();
  renderKeybox();
  if (isAuthError(error)) {
    // No view without a key the server accepts: it would only fill with refusals.
    main.replaceChildren(keyPrompt(error));
    if (!storedKey()) keybox.querySelector("input")?.focus();
    return;
  }
  keepFormOnKeyChange = section === "new";
  view(...location.pathname.match(pattern).slice(1).map(decodeURIComponent));
  // The sweeps link appears only on a server that has sweeps.
  api("/v1/sweeps?limit=1")
    .then(() => true)
    .catch(() => false)
    .then((found) => {
      document.querySelector("[data-nav=sweeps]").hidden = !found;
      document.body.dataset.sweeps = found ? "yes" : "no";
    });
}

start();
