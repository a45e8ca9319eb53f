// A request's call graph, laid out by dagre and drawn as SVG. Nodes are focusable buttons
// (Enter/Space select a call); phase is shown by colour and by its name in the node.
import dagre from "@dagrejs/dagre";
import { duration, s } from "./dom.js";

const W = 200;
const LINE = 16;
const COLOURS = {
  Pending: "#5f6368",
  Blocked: "#5f6368",
  Queued: "#5f6368",
  Running: "#0b57d0",
  Delegated: "#0b57d0",
  Succeeded: "#146c2e",
  Failed: "#b3261e",
  Cancelled: "#7a4a00",
};

/** How long a call ran (its current attempt); still counting while it runs. */
export function callDuration(c, now) {
  // A map or reduce never runs in a pod: its time is from its creation.
  const start = c.started_at ?? (c.kind === "call" ? null : c.created_at);
  if (!start) return null;
  return (c.finished_at ?? now) - start;
}

function lines(c, now) {
  const out = [`${c.kind === "call" ? "" : `${c.kind} `}${c.function}`, `phase: ${c.phase}`];
  const d = callDuration(c, now);
  out.push(`time: ${duration(d)} · attempts: ${c.attempts}`);
  if (c.pod) out.push(`pod: ${c.pod.length > 30 ? `…${c.pod.slice(-29)}` : c.pod}`);
  if (c.items) {
    const parts = Object.entries(c.items.phases).map(([p, n]) => `${n} ${p}`);
    out.push(`items: ${c.items.total}${parts.length ? ` (${parts.join(", ")})` : ""}`);
  }
  if (c.progress) out.push(`progress: ${c.progress.current}/${c.progress.total}`);
  if (c.error) out.push(`error: ${c.error.type}`);
  return out;
}

/**
 * The SVG of the graph. `onSelect(name)` is called when a node is chosen; `selected` is outlined.
 */
export function renderGraph(calls, { selected, onSelect, now }) {
  const g = new dagre.graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir: "TB", nodesep: 30, ranksep: 50, marginx: 20, marginy: 20 });
  g.setDefaultEdgeLabel(() => ({}));
  const names = new Set(calls.map((c) => c.name));
  for (const c of calls) {
    const text = lines(c, now);
    // About 7 px per character at 12 px: the box grows with its longest line.
    const width = Math.max(W, 24 + 7 * Math.max(...text.map((t) => t.length)));
    g.setNode(c.name, { width, height: text.length * LINE + 14, call: c });
  }
  for (const c of calls) {
    if (c.parent && names.has(c.parent)) g.setEdge(c.parent, c.name, { kind: "call" }, "call");
    if (c.tail_call && names.has(c.tail_call))
      g.setEdge(c.name, c.tail_call, { kind: "tail", label: "tail call", width: 50, height: 14 }, "tail");
    for (const i of c.inputs) if (names.has(i) && i !== c.parent) g.setEdge(i, c.name, { kind: "input" }, `input-${i}`);
  }
  dagre.layout(g);
  const { width = 400, height = 200 } = g.graph();
  const svg = s("svg", {
    width: Math.ceil(width),
    height: Math.ceil(height),
    viewBox: `0 0 ${Math.ceil(width)} ${Math.ceil(height)}`,
    role: "group",
    "aria-label": `Call graph: ${calls.length} calls`,
  });
  svg.append(
    s(
      "defs",
      {},
      s(
        "marker",
        { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" },
        s("path", { d: "M0,0 L10,5 L0,10 z", fill: "#8a8a8a" }),
      ),
    ),
  );
  for (const e of g.edges()) {
    const ed = g.edge(e);
    const d = ed.points.map((p, i) => `${i ? "L" : "M"}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(" ");
    svg.append(s("path", { class: `edge ${ed.kind}`, d, "marker-end": "url(#arrow)" }));
    if (ed.label) svg.append(s("text", { class: "edge-label", x: ed.x, y: ed.y }, ed.label));
  }
  for (const name of g.nodes()) svg.append(drawNode(g.node(name), { selected, onSelect, now }));
  return svg;
}

function drawNode(n, { selected, onSelect, now }) {
  const c = n.call;
  const colour = COLOURS[c.phase] ?? "#5f6368";
  const select = () => onSelect(c.name);
  return s(
    "g",
    {
      class: `node${selected === c.name ? " selected" : ""}`,
      transform: `translate(${n.x - n.width / 2},${n.y - n.height / 2})`,
      tabindex: 0,
      role: "button",
      "aria-pressed": selected === c.name ? "true" : "false",
      "aria-label": `${c.function}: ${c.phase}`,
      "data-call": c.name,
      "data-function": c.function,
      "data-kind": c.kind,
      "data-phase": c.phase,
      "data-focus-key": `node:${c.name}`,
      onclick: select,
      onkeydown: (ev) => {
        if (ev.key === "Enter" || ev.key === " ") {
          ev.preventDefault();
          select();
        }
      },
    },
    s("rect", { width: n.width, height: n.height, rx: 6, stroke: colour }),
    s("rect", { width: 8, height: n.height, rx: 3, fill: colour, stroke: "none" }),
    lines(c, now).map((t, i) => s("text", { x: 16, y: 18 + i * LINE, class: i === 0 ? "title" : "" }, t)),
  );
}
