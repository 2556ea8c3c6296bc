// Tsunagu: small improvements on top of pages that work without JavaScript.
"use strict";

function debounce(fn, ms) { let t; return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); }; }
// Requests the page makes by itself: the server does not count them as someone using it, so
// a dashboard left open does not keep a session alive past the idle timeout.
const BACKGROUND = { "X-Tsunagu-Background": "1" };
function csrf() { const el = document.querySelector('input[name="csrf_token"]'); return el ? el.value : ""; }
const ja = document.documentElement.lang !== "en";

async function postJson(url, body) {
  const res = await fetch(url, { method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() }, body: JSON.stringify(body) });
  return res.ok ? res.json() : null;
}

// Live counter: asks the server, which splits text exactly as the modem sender does.
function setupCounter() {
  const out = document.getElementById("counter");
  const area = out && document.querySelector("textarea[data-count-url]");
  const choices = document.getElementById("choices");
  if (!area || !out) return;
  let typed = false;  // an error already shown beside the field is not repeated on load
  const update = debounce(async () => {
    const c = await postJson(area.dataset.countUrl, { text: area.value, choices: choices ? choices.value : "" });
    if (!c) return;
    if (c.error) { out.textContent = typed ? c.error : ""; out.classList.add("over"); return; }
    out.classList.remove("over");
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
  const edited = () => { typed = true; update(); };
  area.addEventListener("input", edited);
  if (choices) choices.addEventListener("input", edited);
  update();
}

// The preview of the schedule form: the template's text, or the text typed, as it is read.
function showPreview(selector, sample, problem) {
  const box = document.querySelector(selector);
  const problemBox = document.getElementById("schedule-problem");
  if (!box) return;
  box.querySelector("pre").textContent = sample || "";
  box.hidden = !sample;
  if (problemBox) { problemBox.textContent = problem || ""; problemBox.hidden = !problem; }
}

function setupPreview() {
  const area = document.querySelector("textarea[data-preview]");
  const select = document.querySelector("select[data-preview]");
  if (!area) return;
  const update = debounce(async () => {
    if (select && select.value !== "0") return;  // the template's text is what is sent
    const c = await postJson(area.dataset.countUrl, { text: area.value, choices: "", for: area.dataset.for || "" });
    if (c) showPreview(area.dataset.preview, c.sample, c.error);
  }, 200);
  area.addEventListener("input", update);
}

// Choosing a template fills the form with its text and how it is sent (priority, reply
// choices, groups) — or, on the schedule form, shows what it will send. Without JS: the
// "use this template" / "preview" buttons do the same through the server.
function setupTemplates() {
  document.querySelectorAll(".nojs-only").forEach((el) => { el.hidden = true; });
  const select = document.querySelector("select[data-template-url]");
  if (!select) return;
  select.addEventListener("change", async () => {
    if (select.value === "0") {
      if (select.dataset.preview) showPreview(select.dataset.preview, "", "");
      return;
    }
    const url = select.dataset.templateUrl.replace(/\/0$/, `/${select.value}`) + (select.dataset.for ? `?for=${select.dataset.for}` : "");
    const res = await fetch(url, { credentials: "same-origin" });
    if (!res.ok) return;
    const t = await res.json();
    if (select.dataset.preview) { showPreview(select.dataset.preview, t.sample, t.problem); return; }
    const text = document.getElementById("text");
    text.value = t.text;
    const priority = document.querySelector(`input[name="priority"][value="${t.priority}"]`);
    if (priority) priority.checked = true;
    const choices = document.getElementById("choices");
    if (choices) choices.value = t.choices;
    const boxes = document.querySelectorAll('input[type="checkbox"][name="groups"]');
    if (t.groups.length && ![...boxes].some((b) => b.checked)) {
      boxes.forEach((b) => { b.checked = t.groups.includes(Number(b.value)); });
    }
    text.dispatchEvent(new Event("input"));
  });
}

// A long list of people to tick: typing narrows it.
function setupFilters() {
  document.querySelectorAll("input[data-filter]").forEach((input) => {
    const list = document.querySelector(input.dataset.filter);
    if (!list) return;
    input.addEventListener("input", () => {
      const q = input.value.trim();
      list.querySelectorAll("li").forEach((li) => { li.hidden = q !== "" && !li.textContent.includes(q); });
    });
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

// After a refused form the list of what to fix is where the eye (and the keyboard) is.
function setupErrors() {
  const summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); summary.scrollIntoView({ block: "start" }); }
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
    // Held back by the daily limit: shown only while some are, with its notice.
    const held = box.querySelector('[data-count="budget_wait"]');
    if (held) held.closest("li").hidden = !d.counts.budget_wait;
    const notice = document.getElementById("budget-notice");
    if (notice) {
      notice.hidden = !d.budget_notice;
      document.getElementById("budget-notice-text").textContent = d.budget_notice || "";
    }
    const ack = box.querySelector('[data-count="acknowledged"]'); if (ack) ack.textContent = d.acknowledged;
    const left = document.getElementById("remaining");
    if (left) left.textContent = d.remaining || "";
    for (const r of d.recipients) {
      const cell = document.querySelector(`#r${r.id} [data-state]`);
      const shown = cell && cell.querySelector(".state");
      if (shown && !shown.classList.contains(`s-${r.state}`)) {
        shown.className = `state s-${r.state}`; shown.textContent = r.label;
        shown.title = r.meaning;
      }
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
  setupCounter(); setupPreview(); setupTemplates(); setupFilters(); setupOnce(); setupErrors();
  setupProgress(); setupDashboard();
});
