// Reloads the page after the number of seconds named by the element carrying data-auto-refresh
// (the page offers a link to stop). Not a <meta http-equiv="refresh">: that cannot be paused and
// is an accessibility failure (WCAG 2.2.1). Waits while the tab is hidden or while
// an open <details> (a data table being read) is left open.
(function () {
  "use strict";
  var holder = document.querySelector("[data-auto-refresh]");
  if (!holder) return;
  var seconds = parseInt(holder.getAttribute("data-auto-refresh"), 10);
  if (!(seconds > 0)) return;
  function due() {
    if (document.hidden || document.querySelector("main details[open]")) {
      window.setTimeout(due, seconds * 1000);
      return;
    }
    window.location.reload();
  }
  window.setTimeout(due, seconds * 1000);
})();
