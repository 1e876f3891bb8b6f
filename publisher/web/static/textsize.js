// 大字模式 (large text, 适老化): a class on <html> remembered in this browser's localStorage; no server
// state. Loaded without defer in <head> so the class is set before the first paint (no flash of
// small text); the button is wired once the page is parsed. The website ships the same logic.
"use strict";
(function () {
  const KEY = "publisher.large-text", CLS = "large-text", root = document.documentElement;
  const stored = () => { try { return localStorage.getItem(KEY) === "1"; } catch (e) { return false; } };
  root.classList.toggle(CLS, stored());
  document.addEventListener("DOMContentLoaded", () => {
    const button = document.getElementById("large-text");
    if (!button) return;
    button.setAttribute("aria-pressed", String(root.classList.contains(CLS)));
    button.addEventListener("click", () => {
      const on = root.classList.toggle(CLS);
      button.setAttribute("aria-pressed", String(on));
      try { localStorage.setItem(KEY, on ? "1" : "0"); } catch (e) { /* private mode: this page only */ }
    });
  });
})();
