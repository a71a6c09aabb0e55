// The invoice page's status box turns "paid" when the payment arrives over the line (payeasy/live.py):
// server-sent events when the server offers them (data-events-url), else a poll of the status every second.
// The box is an aria-live region: screen readers announce the change. No inline script (CSP).
(function () {
  "use strict";
  var box = document.getElementById("invoice-status");
  if (!box || !box.dataset.statusUrl) return;

  function show(state) {
    if (!state || state.status === box.dataset.status) return;
    box.dataset.status = state.status;
    box.className = box.className.replace(/\bstatus-box-\S+/g, "").trim() + " status-box-" + state.status;
    var p = document.createElement("p");
    var strong = document.createElement("strong");
    strong.textContent = state.label;
    p.appendChild(strong);
    if (state.message) p.appendChild(document.createTextNode(" — " + state.message));
    box.replaceChildren(p);
    if (state.status !== "published") {
      document.querySelectorAll("[data-hide-when-paid]").forEach(function (el) { el.hidden = true; });
    }
  }

  function done() { return box.dataset.status !== "published"; }

  function poll() {
    fetch(box.dataset.statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(show)
      .catch(function () {})
      .finally(function () { if (!done()) window.setTimeout(poll, 1000); });
  }

  if (box.dataset.eventsUrl && window.EventSource) {
    var source = new EventSource(box.dataset.eventsUrl);
    var failures = 0;
    source.addEventListener("status", function (e) {
      failures = 0;
      show(JSON.parse(e.data));
      if (done()) source.close();
    });
    source.onerror = function () {
      // the stream ends after a few minutes and EventSource reconnects; if it keeps failing, poll
      failures += 1;
      if (failures >= 3) { source.close(); if (!done()) poll(); }
    };
  } else {
    window.setTimeout(poll, 1000);
  }
})();
