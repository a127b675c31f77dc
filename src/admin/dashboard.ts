/**
 * The routes dashboard (`GET /` on the admin listener; issue #6). One self-contained page: inline CSS and
 * script, no fonts, images or CDN, so it works on a closed network. A TS string module rather than an .html
 * asset so `npm run build` output carries it without a copy step.
 *
 * The table is fed by the Server-Sent Events of `GET /events`: a snapshot on connect, diffs after. Rows are
 * built once per route and updated in place; the filter only toggles `hidden` on prebuilt rows and matches
 * against a precomputed lower-case string, so 2000 masters filter within a frame.
 */

const style = `
:root{--bg:#f4f6f9;--fg:#1c2330;--muted:#667085;--line:#e4e7ec;--card:#fff;--run:#12b76a;--start:#f79009;--bad:#f04438;--gone:#98a2b3;--accent:#2e90fa}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;background:var(--bg);color:var(--fg)}
header{background:#101828;color:#fff;padding:0 20px;height:52px;display:flex;align-items:center;gap:16px;position:sticky;top:0;z-index:2}
header h1{font-size:16px;margin:0;font-weight:650;letter-spacing:.02em;white-space:nowrap}
header h1 small{color:#98a2b3;font-weight:400;margin-left:6px}
.status{display:flex;gap:8px;margin-left:auto;overflow:hidden}
.chip{background:#1d2939;border:1px solid #344054;border-radius:999px;padding:3px 11px;font-size:12px;color:#d0d5dd;white-space:nowrap}
.chip b{color:#fff;font-weight:600}
.chip.ok{border-color:#12b76a;color:#a6f4c5}.chip.warn{border-color:#f79009;color:#fec84b}.chip.bad{border-color:#f04438;color:#fda29b}
.dot{display:inline-block;width:8px;height:8px;border-radius:50%;margin-right:6px;background:var(--bad);vertical-align:0}
.chip.live .dot{background:var(--run);box-shadow:0 0 0 3px rgba(18,183,106,.25)}
main{padding:18px 20px 40px}
.counts{display:flex;gap:10px;flex-wrap:wrap;margin-bottom:14px}
.count{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:9px 16px;min-width:128px;cursor:pointer;text-align:left;font:inherit;color:inherit;border-left-width:4px}
.count:hover{border-color:#b2b8c2}
.count .n{font-size:24px;font-weight:650;display:block;font-variant-numeric:tabular-nums;line-height:1.2}
.count .l{color:var(--muted);font-size:11px;text-transform:uppercase;letter-spacing:.06em}
.count[aria-pressed=true]{box-shadow:0 0 0 2px var(--accent)}
.count.all{border-left-color:var(--accent)}.count.running{border-left-color:var(--run)}.count.starting{border-left-color:var(--start)}
.count.unhealthy{border-left-color:var(--bad)}.count.gone{border-left-color:var(--gone)}
.banner{background:#fef3f2;border:1px solid #fecdca;color:#b42318;border-radius:8px;padding:8px 12px;margin-bottom:12px}
.toolbar{display:flex;gap:12px;align-items:center;margin-bottom:10px}
#filter{flex:1;max-width:520px;padding:8px 12px;border:1px solid #d0d5dd;border-radius:8px;font:inherit;background:#fff}
#filter:focus{outline:2px solid var(--accent);outline-offset:-1px}
#shown{color:var(--muted);font-size:13px}
table{width:100%;border-collapse:separate;border-spacing:0;background:var(--card);border:1px solid var(--line);border-radius:10px}
th{text-align:left;font-size:11px;text-transform:uppercase;letter-spacing:.06em;color:var(--muted);background:#f9fafb;padding:8px 12px;border-bottom:1px solid var(--line);position:sticky;top:52px;z-index:1}
td{padding:7px 12px;border-bottom:1px solid var(--line);vertical-align:top}
tbody tr:last-child td{border-bottom:0}
tbody tr:hover td{background:#f9fafb}
.name{font-weight:600}.sub{color:var(--muted);font-size:12px}
.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:12.5px}
.pill{display:inline-block;border-radius:999px;padding:1px 9px;font-size:12px;font-weight:600;color:#fff}
.pill.running{background:var(--run)}.pill.starting{background:var(--start)}.pill.unhealthy{background:var(--bad)}.pill.gone{background:var(--gone)}
.ep{white-space:nowrap}.ep i{font-style:normal;color:var(--muted);display:inline-block;width:38px;font-size:11px;text-transform:uppercase}
.none{color:var(--gone)}
tr.flash td{animation:flash 1.8s ease-out}
@keyframes flash{from{background:#fef0c7}to{background:transparent}}
.empty{padding:28px;text-align:center;color:var(--muted)}
`;

const body = `
<header>
  <h1>ci-edge<small>routes</small></h1>
  <div class="status">
    <span class="chip" id="conn"><span class="dot"></span><span id="conn-text">connecting</span></span>
    <span class="chip" id="draining" hidden>draining</span>
    <span class="chip">Marathon leader <b id="leader">-</b></span>
    <span class="chip">synced <b id="age">-</b></span>
    <span class="chip" id="fresh">-</span>
  </div>
</header>
<main>
  <div class="counts" id="counts">
    <button class="count all" data-state="" aria-pressed="true"><span class="n" id="n-all">0</span><span class="l">routes</span></button>
    <button class="count running" data-state="running" aria-pressed="false"><span class="n" id="n-running">0</span><span class="l">running</span></button>
    <button class="count starting" data-state="starting" aria-pressed="false"><span class="n" id="n-starting">0</span><span class="l">starting</span></button>
    <button class="count unhealthy" data-state="unhealthy" aria-pressed="false"><span class="n" id="n-unhealthy">0</span><span class="l">unhealthy</span></button>
    <button class="count gone" data-state="gone" aria-pressed="false"><span class="n" id="n-gone">0</span><span class="l">gone</span></button>
  </div>
  <div class="banner" id="error" hidden></div>
  <div class="toolbar">
    <input id="filter" type="search" placeholder="Filter by name, app id, host:port, state, detail  ( / )" autocomplete="off" spellcheck="false">
    <span id="shown"></span>
  </div>
  <table>
    <thead><tr><th>Name</th><th>Kind</th><th>State</th><th>Endpoints</th><th>Marathon app</th><th>Last change</th></tr></thead>
    <tbody id="rows"></tbody>
  </table>
  <div class="empty" id="empty" hidden>No route matches the filter.</div>
</main>
`;

// Plain ES2020 without template literals, so this TS template string needs no escaping.
const script = `
(function () {
  "use strict";
  var ports = ["http", "jnlp", "ssh"];
  var states = ["running", "starting", "unhealthy", "gone"];
  var rows = new Map();
  var names = [];
  var tbody = document.getElementById("rows");
  var filterBox = document.getElementById("filter");
  var stateFilter = "";
  var terms = [];
  var status = null;
  var skew = 0;
  var pending = false;

  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function ago(iso) {
    if (!iso) return "-";
    var s = Math.max(0, (Date.now() - skew - Date.parse(iso)) / 1000);
    if (s < 60) return Math.floor(s) + "s ago";
    if (s < 3600) return Math.floor(s / 60) + "m ago";
    if (s < 86400) return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m ago";
    return Math.floor(s / 86400) + "d ago";
  }
  function haystack(r) {
    var parts = [r.name, r.kind, r.state, r.detail || "", r.app || "", r.path, r.source];
    ports.forEach(function (p) { r.endpoints[p].forEach(function (e) { parts.push(p + " " + e.host + ":" + e.port); }); });
    return parts.join(" ").toLowerCase();
  }
  function fill(tr, r) {
    tr.textContent = "";
    tr.dataset.name = r.name;
    tr.dataset.state = r.state;
    var name = el("td");
    name.appendChild(el("div", "name", r.name));
    name.appendChild(el("div", "sub mono", r.path));
    var state = el("td");
    state.appendChild(el("span", "pill " + r.state, r.state));
    if (r.detail) state.appendChild(el("div", "sub", r.detail));
    var eps = el("td", "mono");
    ports.forEach(function (p) {
      r.endpoints[p].forEach(function (e) {
        var d = el("div", "ep");
        d.appendChild(el("i", "", p));
        d.appendChild(document.createTextNode(e.host + ":" + e.port));
        eps.appendChild(d);
      });
    });
    if (!eps.firstChild) eps.appendChild(el("span", "none", "no healthy endpoint"));
    var app = el("td", "mono");
    if (r.app) app.textContent = r.app; else app.appendChild(el("span", "none", r.source + " route"));
    var when = el("td", "when", ago(r.changedAt));
    when.title = r.changedAt;
    [name, el("td", "", r.kind), state, eps, app, when].forEach(function (c) { tr.appendChild(c); });
    return when;
  }
  function matches(entry) {
    if (stateFilter && entry.route.state !== stateFilter) return false;
    for (var i = 0; i < terms.length; i++) if (entry.hay.indexOf(terms[i]) === -1) return false;
    return true;
  }
  function indexOf(name) {
    var lo = 0, hi = names.length;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (names[mid].localeCompare(name) < 0) lo = mid + 1; else hi = mid; }
    return lo;
  }
  function upsert(r, flash) {
    var key = JSON.stringify(r);
    var entry = rows.get(r.name);
    if (entry && entry.key === key) return;
    if (!entry) {
      entry = { tr: document.createElement("tr") };
      var i = indexOf(r.name);
      var next = i < names.length ? rows.get(names[i]).tr : null;
      names.splice(i, 0, r.name);
      rows.set(r.name, entry);
      tbody.insertBefore(entry.tr, next);
    }
    entry.key = key;
    entry.route = r;
    entry.hay = haystack(r);
    entry.when = fill(entry.tr, r);
    entry.tr.hidden = !matches(entry);
    if (flash) {
      entry.tr.classList.remove("flash");
      requestAnimationFrame(function () { entry.tr.classList.add("flash"); });
    }
  }
  function remove(name) {
    var entry = rows.get(name);
    if (!entry) return;
    entry.tr.remove();
    rows.delete(name);
    names.splice(indexOf(name), 1);
  }
  function refreshCounts() {
    var counts = { running: 0, starting: 0, unhealthy: 0, gone: 0 };
    var shown = 0;
    rows.forEach(function (e) { counts[e.route.state]++; if (!e.tr.hidden) shown++; });
    $("n-all").textContent = rows.size;
    states.forEach(function (s) { $("n-" + s).textContent = counts[s]; });
    $("shown").textContent = shown === rows.size ? rows.size + " routes" : "showing " + shown + " of " + rows.size;
    $("empty").hidden = shown > 0 || rows.size === 0;
    document.title = "ci-edge \\u00b7 " + rows.size + " routes";
  }
  function applyFilter() {
    pending = false;
    terms = filterBox.value.toLowerCase().split(/\\s+/).filter(Boolean);
    rows.forEach(function (e) { var hide = !matches(e); if (e.tr.hidden !== hide) e.tr.hidden = hide; });
    refreshCounts();
  }
  function setStatus(s) {
    status = s;
    skew = Date.now() - Date.parse(s.now);
    $("leader").textContent = s.marathonLeader || "none (file routes)";
    var fresh = $("fresh");
    if (!s.ready) { fresh.textContent = "waiting for first sync"; fresh.className = "chip warn"; }
    else if (s.stale) { fresh.textContent = "stale"; fresh.className = "chip bad"; }
    else { fresh.textContent = "fresh"; fresh.className = "chip ok"; }
    $("draining").hidden = !s.draining;
    $("draining").className = "chip warn";
    var err = $("error");
    err.hidden = !s.lastError;
    err.textContent = s.lastError ? "Last sync failed: " + s.lastError + " (serving the last known routes)" : "";
    tick();
  }
  function tick() {
    $("age").textContent = status && status.syncedAt ? ago(status.syncedAt) : "never";
  }
  function setConnected(live) {
    $("conn").className = live ? "chip live" : "chip";
    $("conn-text").textContent = live ? "live" : "reconnecting";
  }
  function connect() {
    var es = new EventSource("events");
    es.addEventListener("snapshot", function (ev) {
      var d = JSON.parse(ev.data);
      var seen = new Set();
      var first = rows.size === 0;
      d.routes.forEach(function (r) { seen.add(r.name); upsert(r, !first); });
      names.slice().forEach(function (n) { if (!seen.has(n)) remove(n); });
      setStatus(d.status);
      refreshCounts();
      setConnected(true);
    });
    es.addEventListener("diff", function (ev) {
      var d = JSON.parse(ev.data);
      d.upsert.forEach(function (r) { upsert(r, true); });
      d.remove.forEach(remove);
      setStatus(d.status);
      refreshCounts();
    });
    es.onopen = function () { setConnected(true); };
    es.onerror = function () { setConnected(false); };
  }
  filterBox.addEventListener("input", function () {
    if (pending) return;
    pending = true;
    requestAnimationFrame(applyFilter);
  });
  $("counts").addEventListener("click", function (ev) {
    var b = ev.target.closest("button.count");
    if (!b) return;
    stateFilter = b.dataset.state === stateFilter ? "" : b.dataset.state;
    document.querySelectorAll("button.count").forEach(function (x) {
      x.setAttribute("aria-pressed", String(x.dataset.state === stateFilter));
    });
    applyFilter();
  });
  document.addEventListener("keydown", function (ev) {
    if (ev.key === "/" && document.activeElement !== filterBox) { ev.preventDefault(); filterBox.focus(); }
    if (ev.key === "Escape" && document.activeElement === filterBox) { filterBox.value = ""; applyFilter(); }
  });
  setInterval(tick, 1000);
  setInterval(function () {
    rows.forEach(function (e) { if (e.tr.hidden) return; var t = ago(e.route.changedAt); if (e.when.textContent !== t) e.when.textContent = t; });
  }, 10000);
  connect();
})();
`;

export const dashboardHtml = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ci-edge · routes</title>
<style>${style}</style>
</head>
<body>${body}<script>${script}</script>
</body>
</html>
`;

/** Nothing but this page's own inline code and its own event stream: a closed-network page by contract. */
export const dashboardCsp = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'";
