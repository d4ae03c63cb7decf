// GridMR web UI: every element with data-live="URL" is refreshed from that
// URL (a server-rendered HTML fragment) once a second, until a fragment
// marks itself data-final (an ended job). No framework, no build step.
"use strict";
(function () {
  const PERIOD_MS = 1000;
  function follow(el) {
    const url = el.getAttribute("data-live");
    let busy = false;
    const timer = setInterval(async function () {
      if (busy || document.hidden) return;
      if (el.querySelector("[data-final]")) { clearInterval(timer); return; }
      busy = true;
      try {
        const resp = await fetch(url, { credentials: "same-origin", cache: "no-store" });
        if (resp.status === 401 || resp.redirected) { location.reload(); return; }
        if (resp.ok) el.innerHTML = await resp.text();
      } catch (e) {
        // The master restarting: try again at the next tick.
      } finally {
        busy = false;
      }
    }, PERIOD_MS);
  }
  document.querySelectorAll("[data-live]").forEach(follow);
})();
