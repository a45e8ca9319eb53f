/* global document, EventSource, setInterval, clearInterval, CSS, performance */
// One request: summary, the call graph (graph.js), the selected call, every error with its
// traceback, and the calls as a table of buttons. Live over the graph event stream while it runs.
import { api, apiUrl, enc, failure } from "./api.js";
import { duration, h, phaseBadge, put, time } from "./dom.js";
import { callDuration, renderGraph } from "./graph.js";

/** The request page; returns its cleanup (closes the event stream). */
export function requestPage(ns, app, id, { show, setCrumbs }) {
  const main = document.getElementById("main");
  const live = document.getElementById("live");
  setCrumbs([
    ["Namespaces", "#/"],
    [ns, `#/ns/${enc(ns)}`],
    [app, `#/ns/${enc(ns)}/apps/${enc(app)}`],
    [id, null],
  ]);
  const path = `namespaces/${enc(ns)}/applications/${enc(app)}/requests/${enc(id)}/calls`;
  const state = { graph: null, selected: null, done: false };
  // The selected call's logs and (for a map/reduce) its items: fetched on demand, kept outside the
  // per-second redraw so a log being read keeps its scroll position.
  const extra = { call: null, phase: null, itemsKey: null, logs: null, items: null };
  const summary = h("section", { "aria-label": "Request" });
  const graphBox = h("div", { class: "graph-wrap" });
  const details = h("section", { class: "details", "aria-label": "Selected call" });
  const detailsInfo = h("div", {});
  const detailsExtra = h("div", {});
  details.append(detailsInfo, detailsExtra);
  const errors = h("section", { "aria-label": "Errors" });
  const callsTable = h("section", { "aria-label": "Calls" });
  show(
    `Request ${id}`,
    summary,
    h(
      "p",
      { class: "legend muted" },
      h("span", {}, "Solid arrow: made the call"),
      h("span", {}, "Dashed: tail call"),
      h("span", {}, "Dotted: takes its output"),
    ),
    graphBox,
    details,
    errors,
    callsTable,
  );
  const draw = () => {
    if (!state.graph) return;
    // A redraw's cost, for the bench (npm run bench -- --ui) and the browser's profiler.
    performance.mark("trellis:draw-start");
    const now = Date.now();
    const { request, calls, hidden } = state.graph;
    put(summary, requestSummary(request, hidden, now));
    // Redrawing replaces the elements: keep keyboard focus where it was.
    const focused = document.activeElement?.getAttribute?.("data-focus-key");
    put(graphBox, renderGraph(calls, { selected: state.selected, onSelect: choose, now }));
    const sel = calls.find((c) => c.name === state.selected);
    put(detailsInfo, ...(sel ? callDetails(sel, now) : [h("p", { class: "muted" }, "Select a call.")]));
    syncExtra(sel);
    put(errors, ...errorList(calls));
    put(callsTable, callList(calls, state.selected, choose, now));
    if (focused) main.querySelector(`[data-focus-key="${CSS.escape(focused)}"]`)?.focus();
    if (performance.getEntriesByName("trellis:draw").length >= 100) performance.clearMeasures("trellis:draw");
    performance.measure("trellis:draw", "trellis:draw-start");
    performance.clearMarks("trellis:draw-start");
  };
  const callPath = (name) => `${path}/${enc(name)}`;
  const renderExtra = () => {
    const sel = state.graph?.calls.find((c) => c.name === extra.call);
    const focused = detailsExtra.contains(document.activeElement)
      ? document.activeElement.getAttribute("data-focus-key")
      : null;
    put(detailsExtra, sel ? [logsSection(sel, extra.logs, loadLogs), itemsSection(sel, extra.items, loadItems)] : []);
    if (focused) detailsExtra.querySelector(`[data-focus-key="${CSS.escape(focused)}"]`)?.focus();
  };
  const syncExtra = (sel) => {
    if ((sel?.name ?? null) !== extra.call) {
      Object.assign(extra, { call: sel?.name ?? null, phase: null, itemsKey: null, logs: null, items: null });
    }
    if (!sel) return put(detailsExtra);
    const itemsKey = sel.items ? JSON.stringify(sel.items) : null;
    // Items are fetched a page at a time, again when the map's counts moved.
    if (itemsKey && itemsKey !== extra.itemsKey) {
      extra.itemsKey = itemsKey;
      loadItems(extra.items?.offset ?? 0);
    }
    if (sel.phase !== extra.phase) {
      extra.phase = sel.phase;
      renderExtra();
    }
  };
  const loadLogs = () => {
    const name = extra.call;
    extra.logs = { ...extra.logs, loading: true };
    renderExtra();
    api(`${callPath(name)}/logs?tailLines=500`).then(
      (r) => name === extra.call && ((extra.logs = { text: r.text, pod: r.pod }), renderExtra()),
      (e) => name === extra.call && ((extra.logs = { error: e.message }), renderExtra()),
    );
  };
  const loadItems = (offset) => {
    const name = extra.call;
    api(`${callPath(name)}/items?offset=${offset}&limit=${ITEMS_PAGE}`).then(
      (r) => name === extra.call && ((extra.items = r), renderExtra()),
      (e) => name === extra.call && ((extra.items = { offset, error: e.message }), renderExtra()),
    );
  };
  const choose = (name) => {
    state.selected = name;
    draw();
  };
  const apply = (g) => {
    state.graph = g;
    draw();
  };
  live.textContent = "Connecting…";
  const events = new EventSource(apiUrl(`${path}/events`));
  events.addEventListener("graph", (e) => {
    live.textContent = "Live";
    apply(JSON.parse(e.data));
  });
  events.addEventListener("completed", () => {
    state.done = true;
    live.textContent = "Finished";
    events.close();
    // Late updates of children (cancellations) after the root finished.
    api(path).then(apply, () => {});
  });
  events.addEventListener("error", () => {
    if (state.done) return;
    live.textContent = "Reconnecting…";
    // The stream may be refused (401/403/404): show why from the JSON route.
    api(path).then(apply, (e) => {
      events.close();
      live.textContent = "";
      put(summary, failure(e));
    });
  });
  const tick = setInterval(() => state.graph && !state.done && draw(), 1000);
  return () => {
    events.close();
    clearInterval(tick);
    live.textContent = "";
  };
}

const ITEMS_PAGE = 50;
const TERMINAL = new Set(["Succeeded", "Failed", "Cancelled"]);

function logsSection(c, logs, load) {
  // A map/reduce call, or one not started, has no pod of its own: nothing to read.
  if (!c.pod)
    return h(
      "section",
      { "aria-label": "Logs", class: "logs" },
      h("h3", {}, "Logs"),
      h(
        "p",
        { class: "muted" },
        c.items ? "No pod of its own: each item ran on the pod in its row below." : "Not run on a pod yet.",
      ),
    );
  const running = !TERMINAL.has(c.phase);
  const button = (label) =>
    h("button", { type: "button", "data-focus-key": "logs", disabled: !!logs?.loading, onclick: load }, label);
  return h(
    "section",
    { "aria-label": "Logs", class: "logs" },
    h("h3", {}, "Logs"),
    logs?.loading ? button("Loading logs…") : null,
    !logs ? button("Show logs") : null,
    logs?.error
      ? [button("Try again"), h("p", { class: "problem", role: "alert" }, `Could not load the logs: ${logs.error}`)]
      : null,
    logs?.text !== undefined
      ? [
          running ? button("Refresh logs") : null,
          h("p", { class: "muted" }, `Last 500 lines of the worker container of pod ${logs.pod}`),
          h("pre", { class: "log", tabindex: "0" }, logs.text || "(empty)"),
        ]
      : null,
  );
}

function itemsSection(c, page, load) {
  if (!c.items) return null;
  if (!page) return h("p", { class: "muted" }, "Loading items…");
  if (page.error) return h("p", { class: "problem", role: "alert" }, `Could not load the items: ${page.error}`);
  const { offset, total, items } = page;
  const last = Math.min(offset + items.length, total);
  return h(
    "section",
    { "aria-label": "Items" },
    h("h3", {}, "Items"),
    h(
      "p",
      { class: "pager" },
      h(
        "button",
        {
          type: "button",
          "data-focus-key": "items-prev",
          disabled: offset === 0,
          onclick: () => load(Math.max(0, offset - ITEMS_PAGE)),
        },
        "Previous items",
      ),
      ` ${total ? offset + 1 : 0}–${last} of ${total} `,
      h(
        "button",
        {
          type: "button",
          "data-focus-key": "items-next",
          disabled: last >= total,
          onclick: () => load(offset + ITEMS_PAGE),
        },
        "Next items",
      ),
    ),
    h(
      "table",
      {},
      h("caption", {}, `Items of ${c.kind} ${c.function}`),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["Item", "Phase", "Time", "Attempts", "Pod", "Error"].map((t) => h("th", { scope: "col" }, t)),
        ),
      ),
      h(
        "tbody",
        {},
        items.map((i) =>
          h(
            "tr",
            { "data-item-row": String(i.index), "data-phase": i.phase },
            h("td", {}, String(i.index)),
            h("td", {}, phaseBadge(i.phase)),
            h("td", {}, duration(i.started_at ? (i.finished_at ?? Date.now()) - i.started_at : null)),
            h("td", {}, String(i.attempts)),
            h("td", {}, i.pod ?? "–"),
            h("td", { class: i.error ? "problem" : "" }, i.error ? `${i.error.type}: ${i.error.message}` : ""),
          ),
        ),
      ),
    ),
  );
}

function requestSummary(r, hidden, now) {
  return h(
    "dl",
    {},
    h("dt", {}, "Status"),
    h("dd", { id: "request-phase" }, phaseBadge(r.phase), ` ${r.status}`),
    h("dt", {}, "Function"),
    h("dd", {}, r.function),
    h("dt", {}, "Created"),
    h("dd", {}, time(r.created_at)),
    h("dt", {}, "Duration"),
    h("dd", {}, duration((r.finished_at ?? now) - r.created_at)),
    r.progress ? [h("dt", {}, "Progress"), h("dd", {}, progressBar(r.progress))] : null,
    r.error ? [h("dt", {}, "Error"), h("dd", { class: "problem" }, `${r.error.type}: ${r.error.message}`)] : null,
    r.waiting ? [h("dt", {}, "Waiting"), h("dd", { class: "problem" }, r.waiting.message)] : null,
    hidden ? [h("dt", {}, "Not drawn"), h("dd", {}, `${hidden} calls (map/reduce items, folded into counts)`)] : null,
  );
}

function progressBar(p) {
  return [
    h("progress", { max: p.total || 1, value: p.current }, `${p.current}/${p.total}`),
    ` ${p.current}/${p.total}${p.message ? ` ${p.message}` : ""}`,
  ];
}

function callDetails(c, now) {
  return [
    h("h2", {}, `Call ${c.function}`),
    h(
      "dl",
      {},
      h("dt", {}, "Name"),
      h("dd", {}, c.name),
      h("dt", {}, "Phase"),
      h("dd", {}, phaseBadge(c.phase)),
      h("dt", {}, "Kind"),
      h("dd", {}, c.kind),
      h("dt", {}, "Attempts"),
      h("dd", {}, `${c.attempts} (disruptions ${c.disruptions}, infrastructure failures ${c.infrastructure_failures})`),
      h("dt", {}, "Time"),
      h("dd", {}, duration(callDuration(c, now))),
      h("dt", {}, "Pod"),
      h("dd", {}, c.pod ?? "–"),
      c.tail_call ? [h("dt", {}, "Tail call"), h("dd", {}, c.tail_call)] : null,
      c.items
        ? [
            h("dt", {}, "Items"),
            h(
              "dd",
              {},
              `${c.items.total}: ${Object.entries(c.items.phases)
                .map(([p, n]) => `${n} ${p}`)
                .join(", ")}`,
            ),
          ]
        : null,
      c.progress ? [h("dt", {}, "Progress"), h("dd", {}, progressBar(c.progress))] : null,
    ),
    c.error ? errorBlock(c) : null,
  ];
}

function errorBlock(c) {
  return h(
    "div",
    { class: "error", "data-error-call": c.name },
    h("p", { class: "problem" }, h("strong", {}, c.error.type), `: ${c.error.message}`),
    c.error.reason ? h("p", { class: "muted" }, `reason: ${c.error.reason}`) : null,
    c.error.cause ? h("p", { class: "muted" }, `caused by call ${c.error.cause}`) : null,
    c.error.traceback ? h("pre", { class: "traceback" }, c.error.traceback) : null,
  );
}

function errorList(calls) {
  const failed = calls.filter((c) => c.error && c.phase === "Failed");
  if (!failed.length) return [];
  return [h("h2", {}, "Errors"), ...failed.map((c) => [h("h3", {}, `${c.function} (${c.name})`), errorBlock(c)])];
}

function callList(calls, selected, choose, now) {
  return h(
    "table",
    {},
    h("caption", {}, "Calls"),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Call", "Phase", "Time", "Attempts", "Pod"].map((t) => h("th", { scope: "col" }, t)),
      ),
    ),
    h(
      "tbody",
      {},
      calls.map((c) =>
        h(
          "tr",
          { "data-call-row": c.name, "data-phase": c.phase },
          h(
            "td",
            {},
            h(
              "button",
              {
                type: "button",
                "data-focus-key": `row:${c.name}`,
                "aria-pressed": selected === c.name ? "true" : "false",
                onclick: () => choose(c.name),
              },
              `${c.kind === "call" ? "" : `${c.kind} `}${c.function}`,
            ),
          ),
          h("td", {}, phaseBadge(c.phase)),
          h("td", {}, duration(callDuration(c, now))),
          h("td", {}, String(c.attempts)),
          h("td", {}, c.pod ?? "–"),
        ),
      ),
    ),
  );
}
