// The main navigation (templates/base.html) folds behind its menu button on a narrow screen; the
// stylesheet (css/foundation/layout.css) decides the width. Without this script the bar scrolls sideways.
(function () {
  "use strict";

  function setUp(nav) {
    var button = nav.querySelector(".nav-toggle");
    var list = button && document.getElementById(button.getAttribute("aria-controls"));
    if (!list || !list.querySelector("li")) {
      return;
    }
    var current = list.querySelector('a[aria-current="page"], a[aria-current="true"]');
    if (current) {
      // the button says where the reader is: "Menu  Invoices"
      var where = document.createElement("span");
      where.className = "nav-toggle-current";
      where.textContent = current.textContent;
      button.appendChild(where);
    }
    button.hidden = false;
    nav.classList.add("is-collapsible");

    function setOpen(open) {
      button.setAttribute("aria-expanded", open ? "true" : "false");
    }
    button.addEventListener("click", function () {
      setOpen(button.getAttribute("aria-expanded") !== "true");
    });
    nav.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && button.getAttribute("aria-expanded") === "true" && button.offsetParent !== null) {
        setOpen(false);
        button.focus();
      }
    });
  }

  var navs = document.querySelectorAll("[data-site-nav]");
  for (var i = 0; i < navs.length; i += 1) {
    setUp(navs[i]);
  }
})();
