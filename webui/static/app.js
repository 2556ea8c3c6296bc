// Tsunagu: small improvements on top of pages that work without JavaScript.
"use strict";

function debounce(fn, ms) { let t; return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); }; }
// Requests the page makes by itself: the server does not count them as someone using it, so
// a dashboard left open does not keep a session alive past the idle timeout.
const BACKGROUND = { "X-Tsunagu-Background": "1" };
function csrf() { const el = document.querySelector('input[name="csrf_token"]'); return el ? el.value : ""; }
const ja = document.documentElement.lang !== "en";

// Live counter: asks the server, which splits text exactly as the modem sender does.
function setupCounter() {
  const area = document.querySelector("textarea[data-count-url]");
  const out = document.getElementById("counter");
  const choices = document.getElementById("choices");
  if (!area || !out) return;
  const update = debounce(async () => {
    const res = await fetch(area.dataset.countUrl, { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
      body: JSON.stringify({ text: area.value, choices: choices ? choices.value : "" }) });
    if (!res.ok) return;
    const c = await res.json();
    if (c.error) { out.textContent = c.error; out.classList.add("over"); return; }
    out.classList.toggle("over", c.too_long);
    out.classList.toggle("long", c.parts > 1 && !c.too_long);
    if (ja) {
      out.textContent = c.too_long ? `${c.chars}文字 · 長すぎます（最大10通）`
        : c.parts > 1 ? `${c.chars}文字 · ${c.parts}通に分割（1通に収めるには70文字以内）` : `${c.chars}文字 · 1通`;
    } else {
      out.textContent = c.too_long ? `${c.chars} characters · too long (10 parts at most)`
        : c.parts > 1 ? `${c.chars} characters · split into ${c.parts} SMS (70 fit in one)` : `${c.chars} characters · 1 SMS`;
    }
  }, 150);
  area.addEventListener("input", update);
  if (choices) choices.addEventListener("input", update);
  update();
}

// Choosing a template fills the message (without JS: the "use this template" button).
function setupTemplates() {
  const select = document.getElementById("template_id");
  const area = document.getElementById("text");
  if (!select || !area) return;
  select.addEventListener("change", () => {
    if (select.value !== "0") { document.querySelector('button[name="use_template"]').click(); }
  });
}

// One click only: the server also refuses a second send of the same request key.
function setupOnce() {
  document.querySelectorAll("button[data-once]").forEach((b) => {
    b.form.addEventListener("submit", () => { setTimeout(() => { b.disabled = true; }, 0); });
  });
  document.querySelectorAll("form[data-confirm]").forEach((f) => {
    f.addEventListener("submit", (e) => { if (!window.confirm(f.dataset.confirm)) e.preventDefault(); });
  });
  document.querySelectorAll("button[data-print]").forEach((b) => b.addEventListener("click", () => window.print()));
}

// Live progress of a broadcast.
function setupProgress() {
  const box = document.getElementById("progress");
  if (!box || !box.dataset.url) return;
  const tick = async () => {
    const res = await fetch(box.dataset.url, { credentials: "same-origin", headers: BACKGROUND });
    if (!res.ok) return;
    const d = await res.json();
    document.getElementById("bar").value = d.progress;
    for (const [k, v] of Object.entries(d.counts)) {
      const el = box.querySelector(`[data-count="${k}"]`); if (el) el.textContent = v;
    }
    const ack = box.querySelector('[data-count="acknowledged"]'); if (ack) ack.textContent = d.acknowledged;
    for (const r of d.recipients) {
      const cell = document.querySelector(`#r${r.id} [data-state]`);
      if (cell) { cell.innerHTML = ""; const s = document.createElement("span");
        s.className = `state s-${r.state}`; s.textContent = r.label; cell.appendChild(s); }
    }
    const active = d.state === "queued" || d.state === "sending" || d.state === "scheduled";
    // Finished just now: reload once for the actions that apply now (retry, resend).
    if (!active && box.dataset.live === "1") { window.location.reload(); return; }
    setTimeout(tick, active ? 2000 : 5000);  // replies keep coming after the sending ends
  };
  setTimeout(tick, 1000);
}

// The dashboard refreshes itself so a screen left open stays true.
function setupDashboard() {
  const status = document.getElementById("status");
  if (!status) return;
  const url = new URL(window.location.href);
  url.searchParams.set("auto", "1");   // a refresh, not a person: see BACKGROUND
  setInterval(() => window.location.replace(url.toString()), 15000);
}

document.addEventListener("DOMContentLoaded", () => {
  setupCounter(); setupTemplates(); setupOnce(); setupProgress(); setupDashboard();
});
