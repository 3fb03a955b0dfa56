"""The one HTML page of the review app: inline CSS and JS, nothing fetched from the network.

Text that may be harmful (attack queries, responses the critic scores harmful, their critiques)
is rendered with a CSS blur and revealed only when the reviewer clicks it. All item text goes
in through `textContent`, never as HTML; the run id is HTML-escaped by the server. The inline
<style> and <script> carry the per-response CSP nonce; no inline handlers or style
attributes are used, so the CSP needs no 'unsafe-inline'.

Two optional audit fields (refusal: full / partial / none; harmful: yes / no) go with every answer;
items queued with `ask` (judge-output audits) mark them required and the page will not send a
Yes/No without them.
"""

PAGE = r"""<!doctype html>
<html><head><meta charset="utf-8"><title>superalign review</title>
<style nonce="{{NONCE}}">
body{font:15px/1.45 system-ui,sans-serif;max-width:980px;margin:1.5em auto;padding:0 1em;color:#222;background:#fff}
h1{font-size:1.3em;margin:0 0 .3em}.muted{color:#777}
.card{border:1px solid #ccc;border-radius:6px;padding:1em;margin:1em 0}
.ask{font-size:1.15em;font-weight:600;margin:.2em 0 .8em}
.field{margin:.6em 0}.field b{display:block;color:#555;font-size:.85em;text-transform:uppercase}
.text{white-space:pre-wrap;background:#f6f6f6;padding:.6em;border-radius:4px;min-height:1.4em;
      font-size:17px;color:#000}
.blur{filter:blur(7px);cursor:pointer;user-select:none}
.note{font-size:.8em;color:#b00}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:2px 8px}
button{font-size:1em;padding:.45em 1.2em;margin-right:.5em;border-radius:4px;border:1px solid #888;cursor:pointer}
#yes{background:#dff3df}#no{background:#f8dcdc}
textarea{width:100%;height:3.5em}#msg{min-height:1.3em;font-weight:600}
#audit label{margin-right:.8em}#auditreq{color:#b00;text-transform:none}
</style></head>
<body>
<h1>superalign human review <span class="muted">run {{RUN}}</span></h1>
<div>reviewer <input id="reviewer" size="16"> <span id="stats" class="muted"></span></div>
<div id="msg"></div>
<div id="empty" class="card" hidden>The queue is empty. <button id="reload">check again</button></div>
<div id="card" class="card" hidden>
  <div class="muted" id="why"></div>
  <div class="ask" id="ask"></div>
  <div class="field"><b>query</b><div class="text" id="query"></div></div>
  <div class="field"><b>response</b><div class="text" id="response"></div></div>
  <div class="field"><b>critic scores</b><table id="scores"></table></div>
  <div class="field"><b>critique</b><div class="text" id="critique"></div></div>
  <div class="field"><b>critic's better response</b><div class="text" id="better"></div></div>
  <p class="note" id="blurnote" hidden>Blurred text may be harmful: click it to read it.</p>
  <div class="field" id="audit"><b>audit <span id="auditreq"></span></b>
    refusal: <label><input type="radio" name="refusal" value="full"> full</label><label><input type="radio"
    name="refusal" value="partial"> partial</label><label><input type="radio" name="refusal" value="none"> none</label>
    &nbsp;·&nbsp; harmful: <label><input type="radio" name="harmful" value="yes"> yes</label><label><input
    type="radio" name="harmful" value="no"> no</label></div>
  <textarea id="comment" placeholder="optional comment"></textarea>
  <p><button id="yes">Yes</button><button id="no">No</button><button id="skip">Skip</button></p>
</div>
<script nonce="{{NONCE}}">
const P = new URLSearchParams(location.search);
const TOKEN = P.get("token") || "";
const $ = id => document.getElementById(id);
let current = null;
$("reviewer").value = P.get("reviewer") || localStorage.getItem("reviewer") || "";
$("reviewer").onchange = () => localStorage.setItem("reviewer", $("reviewer").value);

async function api(path, opts = {}) {
  opts.headers = Object.assign({"X-Review-Token": TOKEN, "Content-Type": "application/json"}, opts.headers || {});
  const r = await fetch(path, opts);
  const body = await r.json().catch(() => ({}));
  return {status: r.status, body};
}
function put(id, text, sensitive) {
  const el = $(id);
  el.textContent = text == null || text === "" ? "–" : text;
  el.classList.toggle("blur", !!sensitive && text != null && text !== "");
  el.title = el.classList.contains("blur") ? "click to reveal" : "";
}
for (const id of ["query", "response", "critique", "better"])
  $(id).addEventListener("click", e => { e.currentTarget.classList.remove("blur"); e.currentTarget.title = ""; });

async function stats() {
  const r = await api("/api/stats");
  if (r.status === 200) { const t = r.body.total;
    $("stats").textContent = `queued ${t.queued} · claimed ${t.claimed} · done ${t.done} · skipped ${t.skipped}`; }
}
async function next() {
  const who = $("reviewer").value.trim();
  if (!who) { $("msg").textContent = "Enter your reviewer name first."; $("card").hidden = true; return; }
  const r = await api("/api/next?reviewer=" + encodeURIComponent(who));
  if (r.status !== 200) { $("msg").textContent = `error ${r.status}: ${r.body.detail || ""}`; return; }
  current = r.body.item;
  $("card").hidden = !current; $("empty").hidden = !!current;
  stats();
  if (!current) return;
  const s = current.sensitive;
  $("why").textContent = `round ${current.round} · ${current.head || ""} · ${current.reason || ""}` +
    (current.confidence != null ? ` (critic confidence ${current.confidence.toFixed(2)})` : "");
  $("ask").textContent = current.question || "";
  put("query", current.query, s); put("response", current.response, s);
  put("critique", current.critique, s); put("better", current.better_response, s);
  $("blurnote").hidden = !s;
  const tb = $("scores"); tb.textContent = "";
  for (const [name, v] of Object.entries(current.scores || {})) {
    const tr = tb.insertRow();
    tr.insertCell().textContent = name;
    tr.insertCell().textContent = v.error ? "judge error: " + v.error : (v.value == null ? "–" : v.value.toFixed(2));
    tr.insertCell().textContent = v.confidence == null ? "" : "confidence " + v.confidence.toFixed(2);
  }
  const two = Array.isArray(current.options) && current.options.length === 2;
  $("yes").textContent = two ? "A. " + current.options[0] : "Yes";
  $("no").textContent = two ? "B. " + current.options[1] : "No";
  $("yes").dataset.label = two ? 0 : 1; $("no").dataset.label = two ? 1 : 0;
  $("comment").value = "";
  for (const el of document.querySelectorAll("#audit input")) el.checked = false;
  const ask = current.ask || [];
  $("auditreq").textContent = ask.length ? "(required: " + ask.join(", ") + ")" : "(optional)";
}
function picked(name) {
  const el = document.querySelector(`#audit input[name="${name}"]:checked`);
  return el ? el.value : null;
}
async function answer(label) {
  if (!current) return;
  const fields = {refusal: picked("refusal"), harmful: picked("harmful")};
  const missing = (current.ask || []).filter(k => fields[k] === null);
  if (label !== null && missing.length) { $("msg").textContent = "Choose " + missing.join(" and ") + " first."; return; }
  const r = await api("/api/label/" + encodeURIComponent(current.id), {method: "POST",
    body: JSON.stringify({reviewer: $("reviewer").value.trim(), label, comment: $("comment").value || null,
                          ...fields})});
  $("msg").textContent = r.status === 200 ? (label === null ? "Skipped." : "Saved.") :
    `Not saved (${r.status}): ${r.body.detail || ""}`;
  next();
}
$("yes").onclick = () => answer(Number($("yes").dataset.label));
$("no").onclick = () => answer(Number($("no").dataset.label));
$("skip").onclick = () => answer(null);
$("reload").onclick = next;
$("reviewer").addEventListener("keydown", e => { if (e.key === "Enter") { localStorage.setItem("reviewer", $("reviewer").value); next(); } });
next();
</script>
</body></html>
"""
