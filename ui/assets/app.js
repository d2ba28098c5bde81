// abacus dashboard. Plain JavaScript, no build step: every call is either
// the public Connect JSON API (POST /abacus.v1.<Service>/<Method>), exactly
// as a client sends it, or one of the two read-only endpoints under
// /ui/api/. The access token is kept in session storage, so it lasts for
// the tab and is never written to disk.
"use strict";

const TOKEN_KEY = "abacus.token";
const $ = (sel) => document.querySelector(sel);

// ---- calls ----

function authHeaders() {
  const t = sessionStorage.getItem(TOKEN_KEY);
  return t ? { Authorization: "Bearer " + t } : {};
}

// ApiError carries the API's own code and message, shown as they are.
class ApiError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
  toString() {
    return this.code + ": " + this.message;
  }
}

async function decode(resp) {
  const text = await resp.text();
  let body = {};
  try {
    body = text ? JSON.parse(text) : {};
  } catch (e) {
    throw new ApiError("unknown", text || resp.statusText);
  }
  if (!resp.ok) throw new ApiError(body.code || "unknown", body.message || resp.statusText);
  return body;
}

// api calls one method of the public API with a JSON body.
async function api(service, method, body) {
  const resp = await fetch("/abacus.v1." + service + "/" + method, {
    method: "POST",
    headers: Object.assign({ "Content-Type": "application/json" }, authHeaders()),
    body: JSON.stringify(body || {}),
  });
  return decode(resp);
}

async function getJSON(path) {
  return decode(await fetch(path, { headers: authHeaders() }));
}

// ---- formatting ----

function fmtNum(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(2) + "G";
  if (a >= 1e6) return (v / 1e6).toFixed(2) + "M";
  if (a >= 1e4) return (v / 1e3).toFixed(1) + "k";
  if (a >= 100 || Number.isInteger(v)) return Math.round(v).toString();
  // Rates of a few per second keep one decimal; "1.0" reads as "1".
  return String(+v.toFixed(a >= 1 ? 1 : 2));
}

function fmtBytes(v) {
  if (v === null || v === undefined) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i ? v.toFixed(1) : v) + " " + units[i];
}

function fmtSeconds(v) {
  if (v === null || v === undefined) return "–";
  if (v < 1) return (v * 1000).toFixed(0) + " ms";
  if (v < 120) return v.toFixed(1) + " s";
  return (v / 60).toFixed(1) + " min";
}

// fmtDuration turns a protojson Duration ("3600s", "0.5s") into "1h".
function fmtDuration(d) {
  if (!d) return "–";
  let s = parseFloat(d);
  if (!s) return "0";
  const parts = [];
  for (const [unit, n] of [["d", 86400], ["h", 3600], ["m", 60]]) {
    if (s >= n) { parts.push(Math.floor(s / n) + unit); s %= n; }
  }
  if (s || !parts.length) parts.push(+s.toFixed(3) + "s");
  return parts.join("");
}

// toDuration turns "5s", "1h30m" or "250ms" into a protojson Duration; a
// malformed value is passed on as typed, for the API to refuse.
function toDuration(s) {
  s = s.trim();
  const re = /(\d+(?:\.\d+)?)(ms|d|h|m|s)/g;
  let total = 0, m, used = 0;
  while ((m = re.exec(s))) {
    total += parseFloat(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }[m[2]];
    used += m[0].length;
  }
  return used === s.length && used > 0 ? +total.toFixed(3) + "s" : s;
}

function fmtTime(ts) {
  if (!ts) return "–";
  return new Date(ts).toLocaleString();
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function show(sel, text) {
  const e = $(sel);
  e.textContent = text || "";
  e.hidden = !text;
}

// ---- token ----

function renderToken() {
  const has = !!sessionStorage.getItem(TOKEN_KEY);
  $("#token-state").textContent = has ? "token set for this tab" : "no token";
  $("#token-input").value = "";
}

$("#token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const t = $("#token-input").value.trim();
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  renderToken();
  refreshPage();
});
$("#token-clear").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  renderToken();
  refreshPage();
});

// ---- pages ----

const pages = ["overview", "namespaces", "counter"];

function currentPage() {
  const p = location.hash.replace(/^#/, "").split("?")[0];
  return pages.includes(p) ? p : "overview";
}

function refreshPage() {
  const page = currentPage();
  for (const p of pages) $("#page-" + p).hidden = p !== page;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.page === page);
  show("#banner", "");
  if (page === "overview") resizeCharts();
  if (page === "namespaces") loadNamespaces();
  if (page === "counter") loadNamespaceNames();
}
window.addEventListener("hashchange", () => {
  if (editing) endEdit();
  refreshPage();
});

// ---- history (overview charts and namespace rates) ----

const palette = ["#3559e0", "#e0663a", "#13a57a", "#b54ad6", "#d6a21c", "#2aa6c9", "#c93a6b", "#6b7a99", "#7bb33b", "#8f5a2e"];
const charts = {}; // group -> {plot, labels}
let latest = null; // the last history answer

function seriesOf(h, group, namespace) {
  return h.series.filter((s) => s.group === group && (namespace === undefined || s.namespace === namespace));
}

function lastValue(values) {
  for (let i = values.length - 1; i >= 0; i--) if (values[i] !== null) return values[i];
  return null;
}

function axisFormatter(unit) {
  if (unit === "B") return (u, vals) => vals.map(fmtBytes);
  return (u, vals) => vals.map((v) => fmtNum(v));
}

function drawChart(div, h) {
  const group = div.dataset.group;
  const list = seriesOf(h, group, "");
  const xs = h.times.map((t) => t / 1000);
  const labels = list.map((s) => s.label);
  const data = [xs, ...list.map((s) => s.values)];
  let c = charts[group];
  const key = labels.join("\n");
  const plotDiv = div.querySelector(".plot");
  // uPlot fixes its series at creation: a new method or code rebuilds it.
  if (!c || c.key !== key) {
    if (c) c.plot.destroy();
    const opts = {
      width: Math.max(plotDiv.clientWidth, 300),
      height: 200,
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(max, 1) * 1.1] } },
      series: [{}, ...labels.map((l, i) => ({ label: l, stroke: palette[i % palette.length], width: 1.5, spanGaps: false }))],
      axes: [{}, { size: 72, values: axisFormatter(div.dataset.unit) }],
      legend: { live: false },
    };
    c = charts[group] = { plot: new uPlot(opts, data, plotDiv), key };
  } else {
    c.plot.setData(data);
  }
  // For tests and scrapers of the page: how much this chart shows.
  const points = list.reduce((n, s) => n + s.values.filter((v) => v !== null).length, 0);
  div.dataset.points = points;
  div.dataset.last = list.reduce((n, s) => n + (lastValue(s.values) || 0), 0);
}

function resizeCharts() {
  for (const div of document.querySelectorAll(".chart")) {
    const c = charts[div.dataset.group];
    if (c) c.plot.setSize({ width: Math.max(div.querySelector(".plot").clientWidth, 300), height: 200 });
  }
}
window.addEventListener("resize", resizeCharts);

function sumLast(h, group) {
  const list = seriesOf(h, group, "");
  if (!list.length) return null;
  return list.reduce((n, s) => n + (lastValue(s.values) || 0), 0);
}

function renderTiles(h) {
  $("#tile-requests").textContent = fmtNum(sumLast(h, "requests"));
  $("#tile-increments").textContent = fmtNum(sumLast(h, "increments"));
  $("#tile-lag").textContent = fmtSeconds(sumLast(h, "lag"));
  $("#tile-queue").textContent = fmtNum(sumLast(h, "queue"));
  const p99 = seriesOf(h, "fsync", "").find((s) => s.label === "p99");
  $("#tile-fsync").textContent = p99 && lastValue(p99.values) !== null ? fmtNum(lastValue(p99.values)) + " ms" : "–";
  $("#tile-store").textContent = fmtBytes(sumLast(h, "store"));
}

function renderNamespaceRates(h) {
  for (const row of document.querySelectorAll("#ns-table tbody tr")) {
    const ns = row.dataset.name;
    for (const [group, cls] of [["ns_requests", ".rate-req"], ["ns_increments", ".rate-inc"]]) {
      const s = h.series.find((x) => x.group === group && x.namespace === ns);
      row.querySelector(cls).textContent = s ? fmtNum(lastValue(s.values)) : "–";
    }
  }
}

async function pollHistory() {
  const page = currentPage();
  try {
    // The overview draws the whole window; elsewhere the last points do.
    const h = await getJSON("/ui/api/history" + (page === "overview" ? "" : "?points=5"));
    latest = h;
    $("#live").textContent = "live";
    $("#live").className = "live ok";
    if (page === "overview") {
      renderTiles(h);
      // The history keeps at most a fixed number of series (its memory
      // bound); say so when some were left out.
      $("#dropped-note").textContent = h.dropped ? h.dropped + " series were not kept: the history is at its cap." : "";
      for (const div of document.querySelectorAll(".chart")) drawChart(div, h);
    }
    if (page === "namespaces") renderNamespaceRates(h);
  } catch (e) {
    $("#live").textContent = e.toString();
    $("#live").className = "live bad";
  }
}

// ---- namespaces ----

let namespaces = [];
let editing = null; // the namespace being edited, or null when creating

function rateLimitText(rl) {
  if (!rl) return "–";
  const parts = [];
  if (rl.requests_per_second) parts.push(fmtNum(rl.requests_per_second) + " req/s");
  if (rl.increments_per_second) parts.push(fmtNum(rl.increments_per_second) + " inc/s");
  if (rl.burst) parts.push("burst " + rl.burst);
  return parts.join(", ") || "–";
}

async function loadNamespaces() {
  try {
    const r = await api("NamespaceService", "ListNamespaces", {});
    namespaces = r.namespaces || [];
  } catch (e) {
    show("#banner", e.toString());
    return;
  }
  const body = $("#ns-table tbody");
  body.replaceChildren();
  for (const ns of namespaces) {
    body.append(el("tr", { "data-name": ns.name },
      el("td", {}, el("a", { href: "#counter", onclick: () => { $("#lookup-ns").value = ns.name; } }, ns.name)),
      el("td", {}, ns.counter_type),
      el("td", {}, ns.counter_cardinality),
      el("td", {}, fmtDuration(ns.accept_limit)),
      el("td", {}, ns.retention ? fmtDuration(ns.retention.delete_after) : "–"),
      el("td", {}, rateLimitText(ns.rate_limit)),
      el("td", { class: "num rate-req" }, "–"),
      el("td", { class: "num rate-inc" }, "–"),
      el("td", {},
        el("button", { type: "button", class: "edit", onclick: () => startEdit(ns) }, "Edit"), " ",
        el("button", { type: "button", class: "danger delete", onclick: () => deleteNamespace(ns.name) }, "Delete"))));
  }
  if (latest) renderNamespaceRates(latest);
}

async function loadNamespaceNames() {
  try {
    const r = await api("NamespaceService", "ListNamespaces", {});
    $("#ns-names").replaceChildren(...(r.namespaces || []).map((ns) => el("option", { value: ns.name })));
  } catch (e) {
    // The lookup works without suggestions.
  }
}

function formFields(f) {
  const out = {};
  for (const name of ["counter_cardinality", "accept_limit", "ttl", "delete_after", "rps", "ips", "burst", "description"]) {
    out[name] = f[name].value;
  }
  return out;
}

function startEdit(ns) {
  editing = Object.assign({}, ns);
  const f = $("#ns-form");
  f.name.value = ns.name;
  f.name.readOnly = true;
  f.counter_type.value = ns.counter_type;
  f.counter_type.disabled = true; // the API refuses to change it
  f.counter_cardinality.value = ns.counter_cardinality || "";
  f.accept_limit.value = fmtDuration(ns.accept_limit);
  f.ttl.value = fmtDuration(ns.ttl);
  f.delete_after.value = ns.retention ? fmtDuration(ns.retention.delete_after) : "";
  const rl = ns.rate_limit || {};
  f.rps.value = rl.requests_per_second || "";
  f.ips.value = rl.increments_per_second || "";
  f.burst.value = rl.burst || "";
  f.description.value = ns.description || "";
  // Only the fields the operator changes are sent: the rest keep their
  // values, as UpdateNamespace does for unset fields.
  editing.shown = formFields(f);
  $("#ns-form-title").textContent = "Edit " + ns.name;
  $("#ns-submit").textContent = "Save";
  $("#ns-cancel").hidden = false;
  f.scrollIntoView();
}

function endEdit() {
  editing = null;
  const f = $("#ns-form");
  f.reset();
  f.name.readOnly = false;
  f.counter_type.disabled = false;
  $("#ns-form-title").textContent = "Create a namespace";
  $("#ns-submit").textContent = "Create";
  $("#ns-cancel").hidden = true;
}
$("#ns-cancel").addEventListener("click", endEdit);

// formNamespace builds an abacus.v1.Namespace from the form. Fields left
// empty are left out, so the API applies its defaults (create) or keeps
// the current value (update).
function formNamespace(f) {
  const ns = { name: f.name.value.trim() };
  const changed = (name) => !editing || editing.shown[name] !== f[name].value;
  if (!editing) ns.counter_type = f.counter_type.value;
  if (f.counter_cardinality.value && changed("counter_cardinality")) ns.counter_cardinality = f.counter_cardinality.value;
  if (f.accept_limit.value.trim() && changed("accept_limit")) ns.accept_limit = toDuration(f.accept_limit.value);
  if (f.ttl.value.trim() && changed("ttl")) ns.ttl = toDuration(f.ttl.value);
  if (f.delete_after.value.trim() && changed("delete_after")) ns.retention = { delete_after: toDuration(f.delete_after.value) };
  const limitChanged = changed("rps") || changed("ips") || changed("burst");
  if (!limitChanged) {
    // Unset: the current limit stays.
  } else if (f.rps.value || f.ips.value || f.burst.value) {
    ns.rate_limit = {
      requests_per_second: +f.rps.value || 0,
      increments_per_second: +f.ips.value || 0,
      burst: +f.burst.value || 0,
    };
  } else if (editing && editing.rate_limit) {
    ns.rate_limit = {}; // cleared in the form: remove the limit
  }
  if (changed("description") && (f.description.value.trim() || editing)) ns.description = f.description.value.trim();
  return ns;
}

$("#ns-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  show("#ns-error", "");
  show("#ns-ok", "");
  const f = ev.target;
  const ns = formNamespace(f);
  try {
    if (editing) {
      await api("NamespaceService", "UpdateNamespace", { namespace: ns });
      show("#ns-ok", "Updated " + ns.name + ".");
    } else {
      await api("NamespaceService", "CreateNamespace", { namespace: ns });
      show("#ns-ok", "Created " + ns.name + ".");
    }
    endEdit();
    await loadNamespaces();
  } catch (e) {
    show("#ns-error", e.toString());
  }
});

async function deleteNamespace(name) {
  if (!confirm("Delete namespace " + name + " and every counter in it?")) return;
  show("#ns-error", "");
  show("#ns-ok", "");
  try {
    await api("NamespaceService", "DeleteNamespace", { name });
    show("#ns-ok", "Deleted " + name + ".");
    await loadNamespaces();
  } catch (e) {
    show("#ns-error", e.toString());
  }
}

// ---- counter lookup ----

// rollupText describes the counter's rollup: from this node's queues, and
// whether the checkpoint covers every write.
function rollupText(st, info) {
  const fmt = (t) => (t ? fmtTime(t) : "");
  if (st.running) return ["rolling up", "A rollup of this counter is running now."];
  if (st.parked) return ["parked", "The count is rolled up; the checkpoint waits until " + fmt(st.not_before) + " for the accept window to pass the last write."];
  if (st.held) return ["queued", "Queued for rollup since " + fmt(st.since) + (st.attempts ? " (" + st.attempts + " failed attempts)" : "") + "."];
  if (!info) return ["–", "This namespace keeps no events or checkpoints (BEST_EFFORT)."];
  const cp = info.checkpoint_time ? Date.parse(info.checkpoint_time) : 0;
  const lw = info.last_write_time ? Date.parse(info.last_write_time) : 0;
  if (!lw || cp >= lw) return ["exact", "The checkpoint covers every write: it is the exact count."];
  return ["behind", "Writes after the checkpoint are not queued on this node; the next write or read queues them."];
}

let lookedUp = null; // {namespace, counter} shown

async function lookup(namespace, counter) {
  show("#lookup-error", "");
  $("#recount-result").textContent = "";
  $("#repair-btn").hidden = true;
  let count;
  try {
    count = await api("CounterService", "GetCount", { namespace, counter_name: counter });
  } catch (e) {
    $("#lookup-result").hidden = true;
    show("#lookup-error", e.toString());
    return;
  }
  lookedUp = { namespace, counter };
  $("#lookup-result").hidden = false;
  $("#lookup-count").textContent = count.count;
  // The checkpoint and the events come from the audit methods, which
  // BEST_EFFORT namespaces do not have (failed_precondition).
  let info = null;
  const notes = [];
  try {
    const r = await api("CounterService", "ListCounters", { namespace, prefix: counter, page_size: 1 });
    info = (r.counters || []).find((c) => c.counter_name === counter) || { checkpoint_count: "0" };
  } catch (e) {
    if (e.code !== "failed_precondition") notes.push(e.toString());
  }
  $("#lookup-checkpoint").textContent = info ? info.checkpoint_count : "–";
  $("#lookup-checkpoint-time").textContent = info && info.checkpoint_time ? fmtTime(info.checkpoint_time) : "never rolled up";
  try {
    const st = await getJSON("/ui/api/rollup?namespace=" + encodeURIComponent(namespace) + "&counter=" + encodeURIComponent(counter));
    const [state, detail] = rollupText(st, info);
    $("#lookup-state").textContent = state;
    $("#lookup-state").className = "v small state-" + state;
    notes.unshift(detail);
  } catch (e) {
    $("#lookup-state").textContent = "–";
    notes.push(e.toString());
  }
  $("#lookup-state-detail").textContent = notes.join(" ");
  const body = $("#lookup-events tbody");
  body.replaceChildren();
  $("#recount-btn").disabled = !info;
  if (!info) return;
  try {
    const r = await api("CounterService", "ListEvents", { namespace, counter_name: counter, order: "NEWEST_FIRST", page_size: 20 });
    for (const ev of r.events || []) {
      body.append(el("tr", {},
        el("td", {}, fmtTime(ev.generation_time)),
        el("td", {}, ev.event_id),
        el("td", { class: "num" }, ev.clear ? "clear" : ev.delta)));
    }
    if (!(r.events || []).length) body.append(el("tr", {}, el("td", { colspan: 3 }, "no events kept")));
  } catch (e) {
    body.append(el("tr", {}, el("td", { colspan: 3 }, e.toString())));
  }
}

$("#lookup-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  lookup($("#lookup-ns").value.trim(), $("#lookup-counter").value);
});

async function recount(repair) {
  if (!lookedUp) return;
  $("#recount-result").textContent = repair ? "repairing…" : "recounting…";
  try {
    const r = await api("CounterService", "Recount", { namespace: lookedUp.namespace, counter_name: lookedUp.counter, repair });
    let text = r.match
      ? "match: " + r.recounted + " from " + r.events_scanned + " events"
      : "MISMATCH: events say " + r.recounted + ", checkpoint says " + r.checkpoint_count;
    if (r.repaired) text += " (repaired)";
    $("#recount-result").textContent = text;
    $("#repair-btn").hidden = r.match || r.repaired;
  } catch (e) {
    $("#recount-result").textContent = e.toString();
  }
}
$("#recount-btn").addEventListener("click", () => recount(false));
$("#repair-btn").addEventListener("click", () => recount(true));

// ---- start ----

renderToken();
refreshPage();
pollHistory();
setInterval(pollHistory, 1000);
