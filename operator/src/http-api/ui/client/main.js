/* global document, window, location, localStorage, URLSearchParams */
// The Trellis web view: hash routes over the v1 JSON routes, read-only.
//   #/                                   pick a namespace
//   #/ns/<ns>                            applications
//   #/ns/<ns>/apps/<app>                 requests of an application
//   #/ns/<ns>/apps/<app>/requests/<id>   one request's call graph, live over SSE while it runs
import { duration, h, phaseBadge, put, time } from "./dom.js";
import { api, enc, failure } from "./api.js";
import { requestPage } from "./request.js";

const main = document.getElementById("main");
const crumbs = document.getElementById("crumbs");
const PAGE = 20;
/** Cleanup of the current view (event stream, timers). */
let leave = () => {};

function show(title, ...children) {
  document.title = `${title} · Trellis`;
  put(main, h("h1", {}, title), ...children);
}

function setCrumbs(parts) {
  put(
    crumbs,
    ...parts.flatMap(([label, href], i) => [
      i ? h("span", { "aria-hidden": "true" }, "›") : null,
      href ? h("a", { href }, label) : h("span", { "aria-current": "page" }, label),
    ]),
  );
}

function namespacePage() {
  setCrumbs([["Namespaces", null]]);
  const input = h("input", {
    id: "ns",
    name: "ns",
    value: localStorage.getItem("trellis.namespace") ?? "default",
    required: true,
  });
  const form = h(
    "form",
    {
      onsubmit: (ev) => {
        ev.preventDefault();
        localStorage.setItem("trellis.namespace", input.value);
        location.hash = `#/ns/${enc(input.value)}`;
      },
    },
    h("label", { for: "ns" }, "Namespace "),
    input,
    " ",
    h("button", { type: "submit" }, "Open"),
  );
  show("Trellis", form);
}

async function applicationsPage(ns) {
  setCrumbs([
    ["Namespaces", "#/"],
    [ns, null],
  ]);
  show(`Applications in ${ns}`, h("p", {}, "Loading…"));
  try {
    const { applications } = await api(`namespaces/${enc(ns)}/applications`);
    const statuses = await Promise.all(
      applications.map((a) => api(`namespaces/${enc(ns)}/applications/${enc(a.name)}/status`).catch((e) => e)),
    );
    const rows = applications.map((a, i) => applicationRow(ns, a, statuses[i]));
    show(
      `Applications in ${ns}`,
      applications.length
        ? h(
            "table",
            {},
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ["Application", "Readiness", "Functions", "Containers (ready/busy)", "Failing conditions"].map((t) =>
                  h("th", { scope: "col" }, t),
                ),
              ),
            ),
            h("tbody", {}, rows),
          )
        : h("p", {}, "No applications in this namespace."),
    );
  } catch (e) {
    show(`Applications in ${ns}`, failure(e));
  }
}

function applicationRow(ns, a, st) {
  const ok = !(st instanceof Error);
  const ready = ok ? st.ready : a.ready;
  const failing = ok ? st.conditions.filter((c) => c.status !== "True" && c.type !== "Degraded") : [];
  return h(
    "tr",
    { "data-app": a.name },
    h("td", {}, h("a", { href: `#/ns/${enc(ns)}/apps/${enc(a.name)}` }, a.name)),
    h("td", {}, h("span", { class: `phase phase-${ready ? "Succeeded" : "Failed"}` }, ready ? "Ready" : "Not ready")),
    h("td", {}, a.functions.join(", ")),
    h(
      "td",
      {},
      ok ? st.functions.map((f) => h("div", {}, `${f.name}: ${f.ready}/${f.busy}`)) : "–",
      ok ? h("div", { class: "muted" }, `total ready: ${st.ready_containers}`) : null,
    ),
    h(
      "td",
      {},
      ok
        ? failing.length
          ? failing.map((c) =>
              h(
                "div",
                { class: "problem" },
                h("strong", {}, `${c.type}=${c.status}`),
                c.reason ? ` (${c.reason})` : "",
                c.message ? `: ${c.message}` : "",
              ),
            )
          : "none"
        : h("span", { class: "problem" }, st.message),
    ),
  );
}

const STATUSES = ["all", "pending", "running", "success", "failure"];
/** "Created within" choices: the label and how far back, in milliseconds. */
const WINDOWS = {
  any: ["any time", 0],
  "1h": ["the last hour", 3_600_000],
  "24h": ["the last 24 hours", 86_400_000],
  "7d": ["the last 7 days", 604_800_000],
};

async function requestsPage(ns, app, query) {
  const status = STATUSES.includes(query.get("status")) ? query.get("status") : "all";
  const within = Object.hasOwn(WINDOWS, query.get("within") ?? "") ? query.get("within") : "any";
  const page = Math.max(0, Number.parseInt(query.get("page") ?? "0", 10) || 0);
  const base = `#/ns/${enc(ns)}/apps/${enc(app)}`;
  const go = (st, pg, w = within) => (location.hash = `${base}?status=${st}&within=${w}&page=${pg}`);
  setCrumbs([
    ["Namespaces", "#/"],
    [ns, `#/ns/${enc(ns)}`],
    [app, null],
  ]);
  show(`Requests of ${app}`, h("p", {}, "Loading…"));
  let requests;
  try {
    // One more than a page: whether there is a next one.
    const since = WINDOWS[within][1] ? `&created_after=${Date.now() - WINDOWS[within][1]}` : "";
    const filter = (status === "all" ? "" : `&status=${status}`) + since;
    ({ requests } = await api(
      `namespaces/${enc(ns)}/applications/${enc(app)}/requests?limit=${PAGE + 1}&offset=${page * PAGE}${filter}`,
    ));
  } catch (e) {
    return show(`Requests of ${app}`, failure(e));
  }
  const more = requests.length > PAGE;
  const shown = requests.slice(0, PAGE);
  const select = h(
    "select",
    { id: "status-filter", onchange: () => go(select.value, 0) },
    STATUSES.map((s) => h("option", { value: s, selected: s === status }, s)),
  );
  const windowSelect = h(
    "select",
    { id: "time-filter", onchange: () => go(status, 0, windowSelect.value) },
    Object.entries(WINDOWS).map(([k, [label]]) => h("option", { value: k, selected: k === within }, label)),
  );
  show(
    `Requests of ${app}`,
    h(
      "div",
      { class: "toolbar" },
      h("label", { for: "status-filter" }, "Status"),
      select,
      h("label", { for: "time-filter" }, "Created within"),
      windowSelect,
      h("button", { type: "button", onclick: () => route() }, "Refresh"),
      h("span", { class: "muted" }, "Newest first"),
    ),
    shown.length
      ? h(
          "table",
          {},
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["Request", "Status", "Function", "Created", "Duration", "Error"].map((t) =>
                h("th", { scope: "col" }, t),
              ),
            ),
          ),
          h(
            "tbody",
            {},
            shown.map((r) =>
              h(
                "tr",
                { "data-request": r.id },
                h("td", {}, h("a", { href: `${base}/requests/${enc(r.id)}` }, r.id)),
                h("td", {}, phaseBadge(r.phase)),
                h("td", {}, r.function),
                h("td", {}, time(r.created_at)),
                h("td", {}, duration((r.finished_at ?? Date.now()) - r.created_at)),
                h("td", { class: "problem" }, r.error ? `${r.error.type}: ${r.error.message}` : ""),
              ),
            ),
          ),
        )
      : h("p", {}, "No requests."),
    h(
      "nav",
      { class: "toolbar", "aria-label": "Pages" },
      h("button", { type: "button", disabled: page === 0, onclick: () => go(status, page - 1) }, "Previous page"),
      h("span", {}, `Page ${page + 1}`),
      h("button", { type: "button", disabled: !more, onclick: () => go(status, page + 1) }, "Next page"),
    ),
  );
}

function route() {
  leave();
  leave = () => {};
  const [path, q = ""] = location.hash.replace(/^#/, "").split("?");
  const query = new URLSearchParams(q);
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "ns" && parts.length === 2) return applicationsPage(parts[1]);
  if (parts[0] === "ns" && parts[2] === "apps" && parts.length === 4) return requestsPage(parts[1], parts[3], query);
  if (parts[0] === "ns" && parts[2] === "apps" && parts[4] === "requests" && parts.length === 6)
    return (leave = requestPage(parts[1], parts[3], parts[5], { show, setCrumbs }));
  return namespacePage();
}

window.addEventListener("hashchange", () => {
  route();
  main.focus();
});
route();
