// Buttons marked data-print open the browser's print dialog (the receipt page). No inline handler (CSP).
(function () {
  "use strict";
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
  });
})();
