// The 情報リンク hand-off page: submit the form to the bank as soon as the page is read.
// Without JavaScript the page's visible button does the same. No inline script (CSP friendly).
(function () {
  "use strict";

  function cameBack() {
    // Back from the bank: do not post the (already used) hand-off again; the button stays there.
    var nav = window.performance && performance.getEntriesByType && performance.getEntriesByType("navigation")[0];
    return Boolean(nav && nav.type === "back_forward");
  }

  function submit() {
    var form = document.querySelector("form[data-auto-submit]");
    if (!form || form.getAttribute("data-submitted") || cameBack()) {
      return;
    }
    form.setAttribute("data-submitted", "1");
    form.submit();
  }

  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      return; // restored from the back/forward cache: leave it to the button
    }
    submit();
  });
})();
