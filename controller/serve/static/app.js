// The status page: polls the JSON API every second and redraws; no framework, no build step.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const COLORS = { healthy: "#2ea043", degraded: "#d29922", unhealthy: "#f85149",
                 unreachable: "#a371f7", unknown: "#6e7781" };
let config = null;
let busy = false;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v; else node.setAttribute(k, String(v));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function badge(text, kind) { return el("span", { class: "badge " + (kind || text) }, text); }

function when(stamp) {
  return stamp ? new Date(stamp * 1000).toISOString().replace("T", " ").slice(0, 19) : "-";
}

function seconds(step) {
  if (!step.started) return "";
  const end = step.ended || Date.now() / 1000;
  return (end - step.started).toFixed(1) + "s";
}

async function getJson(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) {
    let message = response.status + " " + path;
    try { message += ": " + (await response.json()).error; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return response.json();
}

// -- the component x region grid ----------------------------------------------------------

function drawGrid(status) {
  const regions = config.regions;
  const head = document.querySelector("#grid thead");
  const body = document.querySelector("#grid tbody");
  head.replaceChildren(el("tr", {}, el("th", {}, "component"), el("th", {}, "kind"),
    regions.map((r) => el("th", { "data-region": r,
      class: r === status.active_region ? "active-col" : null },
      r, r === status.active_region ? " (active)" : ""))));
  const rows = [el("tr", { class: "region-row" }, el("th", {}, "region"), el("td", {}),
    regions.map((r) => {
      const region = status.regions[r] || { health: "unknown" };
      return el("td", { class: "region-health", "data-region": r,
                        "data-health": region.health }, badge(region.health));
    }))];
  for (const [name, comp] of Object.entries(config.components)) {
    rows.push(el("tr", { "data-component": name }, el("td", {}, name),
      el("td", { class: "dim" }, comp.kind),
      regions.map((r) => {
        const c = ((status.regions[r] || {}).components || {})[name];
        return el("td", { "data-region": r, "data-health": c ? c.health : "unknown" },
                  c ? badge(c.state, c.health) : "-");
      })));
  }
  body.replaceChildren(...rows);
}

function drawSummary(status) {
  document.getElementById("active-region").textContent = status.active_region || "?";
  const control = status.control || {};
  document.getElementById("control").textContent = control.error
    ? "control table: " + control.error
    : `control table: ${control.active} (epoch ${control.epoch}${control.run_id ? ", run " + control.run_id : ""})`;
  const warnings = [...(status.warnings || [])];
  if (!control.error && status.active_region && control.active
      && status.active_region !== control.active) {
    warnings.push(`the regions say ${status.active_region} is active, the control table ` +
                  `${control.active}: failover reconcile`);
  }
  if (status.run_in_progress) warnings.push(`run ${status.run_in_progress} is in progress`);
  document.getElementById("warnings").replaceChildren(
    ...warnings.map((w) => el("p", { class: "warning" }, w)));
}

// -- the run, level by level --------------------------------------------------------------

function drawRun(run) {
  const box = document.getElementById("run");
  const title = document.getElementById("run-title");
  if (!run) { title.textContent = ""; box.replaceChildren(el("p", { class: "dim" }, "no run yet")); return; }
  title.replaceChildren(el("span", { id: "run-id" }, run.id), " ",
    badge(run.status), ` ${run.from} → ${run.to}`);
  title.querySelector(".badge").id = "run-status";
  const groups = new Map();
  for (const step of run.steps) {
    const key = `${step.phase || "?"} ${step.level ?? "?"} @ ${step.region || "?"}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(step);
  }
  const levels = [...groups.entries()].map(([key, steps]) => el("div", { class: "level",
    "data-level": key }, el("span", { class: "label" }, key),
    el("ul", {}, steps.map((s) => el("li", { class: "step", "data-step-id": s.id,
      "data-state": s.state, title: `${s.id}: ${s.state}${s.error ? " (" + s.error + ")" : ""}` },
      badge(s.state), " ", s.component || s.id,
      el("span", { class: "dur" }, seconds(s)),
      s.error ? el("span", { class: "why" }, "⚠") : null)))));
  const degraded = Object.entries(run.degraded || {});
  box.replaceChildren(...levels, degraded.length
    ? el("p", {}, "degraded: ", degraded.map(([c, m]) => `${c} → ${m}`).join(", ")) : "",
    run.error ? el("p", { class: "error" }, run.error) : "");
}

function drawRuns(runs) {
  document.querySelector("#runs tbody").replaceChildren(...runs.runs.slice(0, 10).map((r) =>
    el("tr", { "data-run": r.id }, el("td", {}, r.id), el("td", {}, r.kind),
      el("td", {}, r.from), el("td", {}, r.to), el("td", {}, badge(r.status)),
      el("td", {}, when(r.created)), el("td", { class: "dim" }, r.owner))));
}

// -- the watchers --------------------------------------------------------------------------

function drawWatchers(w) {
  const auto = w.automation || {};
  document.getElementById("automation").replaceChildren(auto.error
    ? el("span", { class: "error" }, "automation: " + auto.error)
    : el("span", { id: "automation-state" }, "automation: ",
         auto.paused ? badge("paused", "degraded") : badge("active", "healthy"),
         auto.paused && auto.reason ? ` (${auto.by}: ${auto.reason})` : ""));
  const lease = w.lease && !w.lease.error ? w.lease : null;
  const now = Date.now() / 1000;
  const rows = [el("p", { class: "dim" }, lease
    ? `lease: ${lease.owner} (token ${lease.token}, ` +
      (lease.expires_at > now ? `${(lease.expires_at - now).toFixed(0)}s left)` : "expired)")
    : "lease: nobody")];
  const decisions = w.decisions || [];
  for (const [region, r] of Object.entries(w.regions || {})) {
    const votes = Object.entries(r.votes || {});
    const own = r.watcher;
    rows.push(el("div", { class: "watcher", "data-region": region },
      el("strong", {}, region), " ", badge(r.health || "unknown"), " votes: ",
      votes.length ? votes.map(([probe, bad]) => el("span", { class: "vote " + (bad ? "bad" : "good") },
        `${probe} ${bad ? "✗" : "✓"}`)) : el("span", { class: "dim" }, "none"),
      own ? el("div", { class: "dim" }, `last: ${own.decision.action || "-"} ` +
        `(${own.decision.reason || ""}), ${own.consecutive_bad} bad in a row, ` +
        `${own.evaluations} evaluations, ${when(own.updated)}`) : null));
  }
  if (decisions.length) {
    const last = decisions[decisions.length - 1];
    rows.push(el("div", { class: "watcher", id: "local-watcher" },
      el("strong", {}, "watcher in this process"), ` ${last.action}: ${last.reason} `,
      el("span", { class: "dim" }, `(${last.consecutive_bad} bad in a row)`),
      el("ol", { class: "dim" }, decisions.slice(-5).reverse().map((d) =>
        el("li", {}, `${d.time} ${d.action}: ${d.reason}`)))));
  }
  document.getElementById("watchers").replaceChildren(...rows);
}

// -- the dependency graph, by level --------------------------------------------------------

function drawGraph(graph, status) {
  const levels = graph.activation_levels;
  const active = (status.regions || {})[status.active_region] || { components: {} };
  const degraded = new Map(Object.entries(graph.degraded || {}));
  const W = 170, H = 30, GX = 60, GY = 14, PAD = 24;
  const tall = Math.max(...levels.map((l) => l.length));
  const width = PAD * 2 + levels.length * W + (levels.length - 1) * GX;
  const height = PAD * 2 + tall * (H + GY) + 10;
  const pos = {};
  levels.forEach((names, i) => names.forEach((name, j) => {
    pos[name] = { x: PAD + i * (W + GX), y: PAD + 14 + j * (H + GY) };
  }));
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
  levels.forEach((_, i) => root.append(svg("text", { x: PAD + i * (W + GX), y: 14,
    class: "axis" }, `level ${i}`)));
  for (const [from, to] of graph.edges) {
    const a = pos[from], b = pos[to];
    if (!a || !b) continue;
    const x1 = a.x, y1 = a.y + H / 2, x2 = b.x + W, y2 = b.y + H / 2;
    root.append(svg("path", { class: "edge", d: `M${x1},${y1} C${x1 - GX / 2},${y1} ` +
      `${x2 + GX / 2},${y2} ${x2},${y2}` }));
  }
  for (const node of graph.nodes) {
    const p = pos[node.name];
    if (!p) continue;
    const health = ((active.components || {})[node.name] || {}).health || "unknown";
    const mark = degraded.get(node.name);
    const g = svg("g", { class: "node" + (mark ? " is-degraded" : ""),
      "data-component": node.name, "data-degraded": mark || "" });
    g.append(svg("rect", { x: p.x, y: p.y, width: W, height: H, rx: 6,
      fill: COLORS[health] || COLORS.unknown, "fill-opacity": 0.35 }));
    g.append(svg("text", { x: p.x + 8, y: p.y + 19 }, node.name + (mark ? ` (${mark})` : "")));
    g.append(svg("title", {}, `${node.name}: ${node.kind}, ${node.tier}, ${health}` +
      (node.degraded ? `; degraded mode ${node.degraded}` : "")));
    root.append(g);
  }
  document.getElementById("graph").replaceChildren(root);
}

// -- the traffic chart ---------------------------------------------------------------------

function drawTraffic(traffic) {
  const series = (traffic.series || []).slice(-120);
  if (!series.length) return;
  document.getElementById("traffic-card").hidden = false;
  const W = 960, H = 180, PAD = 28;
  const max = Math.max(1, ...series.map((s) => s.ok + s.degraded + s.failed));
  const bw = (W - PAD * 2) / 120;
  const root = svg("svg", { width: "100%", height: H, viewBox: `0 0 ${W} ${H}`,
                            preserveAspectRatio: "none", role: "img" });
  root.append(svg("text", { x: 2, y: 12, class: "axis" }, `${max}/s`));
  series.forEach((s, i) => {
    let y = H - PAD;
    for (const kind of ["ok", "degraded", "failed"]) {
      const h = (s[kind] / max) * (H - PAD * 2);
      if (h <= 0) continue;
      y -= h;
      root.append(svg("rect", { x: PAD + i * bw, y, width: Math.max(1, bw - 1), height: h,
        fill: COLORS[kind === "ok" ? "healthy" : kind === "failed" ? "unhealthy" : "degraded"] }));
    }
  });
  const last = series[series.length - 1];
  root.append(svg("text", { x: PAD, y: H - 8, class: "axis" },
    `t=${last.t}s  ok ${last.ok}  degraded ${last.degraded}  failed ${last.failed}`));
  document.getElementById("traffic").replaceChildren(root);
}

// -- actions (only with failover serve --allow-actions) ------------------------------------

// Every answer says what became of the write: done, refused (not applied) or unknown (sent and
// not answered: it may still land, so the switch above is what to watch).
const OUTCOME_NOTE = { refused: "not applied", unknown: "outcome unknown: it may still be " +
                       "applied; watch the automation state above" };

function showOutcome(outcome, text) {
  const out = document.getElementById("action-result");
  out.dataset.outcome = outcome;
  out.className = outcome === "done" ? "" : "error";
  out.textContent = text;
}

async function act(what) {
  const token = document.getElementById("token").value.trim();
  showOutcome("pending", `${what}: waiting for the control table…`);
  let response;
  try {
    response = await fetch("/api/automation/" + what, { method: "POST",
      headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
      body: JSON.stringify({ reason: "from the status page" }) });
  } catch (e) {  // no answer at all: the request may have reached the control table
    showOutcome("unknown", `${what}: no answer (${e.message}); ${OUTCOME_NOTE.unknown}`);
    return;
  }
  const data = await response.json().catch(() => ({}));
  if (response.ok) {
    showOutcome("done", `automation ${data.paused ? "paused" : "active"}`);
    return;
  }
  const outcome = data.outcome || (response.status >= 500 ? "unknown" : "refused");
  showOutcome(outcome, `${response.status}: ${data.error || response.statusText}` +
    (OUTCOME_NOTE[outcome] ? ` (${OUTCOME_NOTE[outcome]})` : ""));
}

// -- the loop ------------------------------------------------------------------------------

async function refresh() {
  if (busy) return;
  busy = true;
  const errors = [];
  const part = (path) => getJson(path).catch((e) => { errors.push(e.message); return null; });
  try {
    const [status, run, runs, watchers, traffic] = await Promise.all([part("/api/status"),
      part("/api/run"), part("/api/runs"), part("/api/watchers"),
      config.traffic ? part("/api/traffic") : Promise.resolve(null)]);
    const graph = await part("/api/graph");  // after the reads: its degraded marks use them
    if (status) { drawSummary(status); drawGrid(status); }
    if (status || run) drawRun(run);
    if (runs) drawRuns(runs);
    if (watchers) drawWatchers(watchers);
    if (status && graph) drawGraph(graph, status);
    if (traffic) drawTraffic(traffic);
    document.getElementById("updated").textContent = "updated " +
      new Date().toLocaleTimeString();
  } finally {
    document.getElementById("error").textContent = errors.join("; ");
    busy = false;
  }
}

async function start() {
  try {
    config = await getJson("/api/config");
  } catch (e) {
    document.getElementById("error").textContent = e.message;
    setTimeout(start, 2000);
    return;
  }
  document.getElementById("app").textContent = config.app;
  document.title = `${config.app}: failover status`;
  if (config.actions) {
    document.getElementById("actions").hidden = false;
    document.getElementById("pause").addEventListener("click", () => act("pause"));
    document.getElementById("resume").addEventListener("click", () => act("resume"));
  }
  await refresh();
  setInterval(refresh, Math.max(500, (config.refresh_seconds || 1) * 1000));
}

document.addEventListener("DOMContentLoaded", start);
