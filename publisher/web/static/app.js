// The little JavaScript the workspace needs: live preview, image upload, cover picking, confirmations.
// Loaded from /static (the Content-Security-Policy forbids inline scripts).
"use strict";
(function () {
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

  document.addEventListener("submit", (ev) => {
    const msg = ev.target.dataset.confirm;
    if (msg && !window.confirm(msg)) ev.preventDefault();
  });
  document.querySelectorAll("[data-back]").forEach((a) =>
    a.addEventListener("click", (ev) => { if (history.length > 1) { ev.preventDefault(); history.back(); } }));

  // calendar: drag an event to another day to move it there, at the same time of day
  const cal = document.querySelector("table[data-reschedule]");
  if (cal) {
    let dragged = null;
    cal.addEventListener("dragstart", (ev) => { dragged = ev.target.closest(".ev[draggable]"); });
    cal.addEventListener("dragover", (ev) => { if (dragged && ev.target.closest("td[data-day]")) ev.preventDefault(); });
    cal.addEventListener("drop", async (ev) => {
      const cell = ev.target.closest("td[data-day]");
      if (!dragged || !cell) return;
      ev.preventDefault();
      const body = new URLSearchParams({ at: `${cell.dataset.day}T${dragged.dataset.time}`, when: "at" });
      const r = await fetch(`/items/${dragged.dataset.item}/schedule`, { method: "POST", body, headers: { "X-CSRF-Token": csrf() }, credentials: "same-origin", redirect: "manual" });
      if (r.ok || r.type === "opaqueredirect" || r.status === 303) window.location.reload();
      else window.alert(await r.text());
      dragged = null;
    });
  }

  const form = document.getElementById("compose");
  if (!form) return;
  const pane = document.getElementById("preview");
  const body = form.querySelector('textarea[name="body_markdown"]');
  let timer = null, seq = 0, busy = false, again = false;

  // one preview request at a time: typing into a long body queued a render per pause before
  async function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    const mine = ++seq;
    const data = new FormData(form);
    try {
      const r = await fetch(form.dataset.preview, { method: "POST", body: data, headers: { "X-CSRF-Token": csrf() }, credentials: "same-origin" });
      if (mine !== seq) return;
      // the server renders with autoescaping and sanitised HTML; the CSP stops any script regardless
      pane.innerHTML = await r.text();
      pane.dataset.ready = String(mine);
    } catch (e) { /* offline: keep the last preview */ }
    finally {
      busy = false;
      if (again) { again = false; later(); }
    }
  }
  // a long body waits for a longer pause (the server renders at most its first 200 KB)
  const later = () => { clearTimeout(timer); timer = setTimeout(refresh, body.value.length > 50000 ? 1500 : 300); };
  form.addEventListener("input", later);
  form.addEventListener("change", later);
  refresh();

  async function upload(input, status) {
    const data = new FormData();
    data.append("file", input.files[0]);
    status.textContent = "…";
    const r = await fetch(input.dataset.upload, { method: "POST", body: data, headers: { "X-CSRF-Token": csrf() }, credentials: "same-origin" });
    const out = await r.json().catch(() => ({}));
    if (!r.ok) { status.textContent = out.detail || r.statusText; input.value = ""; return null; }
    addCover(out.sha256, input.files[0].name);
    return out;
  }

  // each channel's cover picker offers every image of the item, and each one uploaded since (for the
  // body or for a cover): the new one is added to all of them, built as the server builds the others
  function addCover(sha, name) {
    form.querySelectorAll("[data-cover-picker]").forEach((picker) => {
      const box = picker.querySelector(".covers");
      if (box.querySelector(`input[value="asset://${sha}"]`)) return;
      const label = document.createElement("label");
      label.className = "cover-choice";
      const input = document.createElement("input");
      Object.assign(input, { type: "radio", name: `wording.${picker.dataset.coverPicker}.cover`, value: `asset://${sha}` });
      const img = Object.assign(document.createElement("img"), { src: `/media/${sha}`, alt: "" });
      const span = document.createElement("span");
      span.textContent = name;
      label.append(input, img, span);
      box.append(label);
    });
  }

  form.querySelectorAll("input[data-cover-for]").forEach((input) => {
    const channel = input.dataset.coverFor;
    const status = form.querySelector(`[data-cover-status="${channel}"]`);
    input.addEventListener("change", async () => {
      if (!input.files.length) return;
      const out = await upload(input, status);
      if (!out) return;
      const picker = form.querySelector(`[data-cover-picker="${channel}"]`);
      picker.querySelector(`input[value="asset://${out.sha256}"]`).checked = true;
      status.textContent = "✓ " + input.files[0].name;
      input.value = "";
      refresh();
    });
  });

  const file = document.getElementById("image");
  const status = document.getElementById("upload-status");
  file?.addEventListener("change", async () => {
    if (!file.files.length) return;
    const out = await upload(file, status);
    if (!out) return;
    const at = body.selectionStart ?? body.value.length;
    const text = "\n" + out.markdown + "\n";
    body.value = body.value.slice(0, at) + text + body.value.slice(at);
    status.textContent = "✓ " + file.files[0].name;
    status.dataset.sha = out.sha256;
    file.value = "";
    refresh();
  });
})();
