// The console's invoice form: add and remove line rows in the page, and keep the totals up to date.
//
// Progressive enhancement: without this script "Add a line" and "Remove this line (line n)" are submit
// buttons the server answers by showing the form again (billing/console_views.py, rows_changed), and the
// totals are the server's. The totals here mirror billing/invoicing.py (totals_preview → totals_from_sums,
// round_div) exactly, in BigInt: integer yen, tax computed once per rate (10 %, 8 % reduced), rounded
// by the biller's rule (floor, ceiling, half_up away from zero). The server stays the authority: it
// computes the totals again when the invoice is saved. No inline script or handler (CSP).
(function () {
  "use strict";

  var form = document.querySelector("form[data-invoice-form]");
  if (!form) return;
  var rowsBox = form.querySelector("[data-line-rows]");
  var template = document.getElementById("line-template");
  var addButton = form.querySelector("[data-add-line]");
  var status = form.querySelector("[data-line-status]");
  var totalForms = form.querySelector("input[name='lines-TOTAL_FORMS']");
  var initialForms = form.querySelector("input[name='lines-INITIAL_FORMS']");
  var maxForms = form.querySelector("input[name='lines-MAX_NUM_FORMS']");
  if (!rowsBox || !template || !addButton || !totalForms) return;

  // --- the arithmetic of billing/invoicing.py ----------------------------------------------------------
  var RATES = { "10": 10n, "8": 8n };
  var ALIASES = {
    "10": "10", "10%": "10", "8": "8", "8%": "8", "8%※": "8", "軽減": "8",
    "exempt": "exempt", "非課税": "exempt", "免税": "exempt", "0": "exempt", "0%": "exempt"
  };
  var MAX_QUANTITY = 10000000n;
  var MAX_UNIT_PRICE = 9999999999n;
  var MAX_TOTAL = 99999999999n;

  function floorDiv(n, d) { // d > 0; Python's //
    var q = n / d;
    if (n % d !== 0n && n < 0n) q -= 1n;
    return q;
  }

  function roundDiv(n, d, rule) { // round_div
    if (rule === "floor") return floorDiv(n, d);
    if (rule === "ceiling") return -floorDiv(-n, d);
    if (rule === "half_up") {
      var sign = n < 0n ? -1n : 1n;
      var abs = n < 0n ? -n : n;
      return sign * floorDiv(2n * abs + d, 2n * d);
    }
    throw new Error("unknown rounding rule " + rule);
  }

  function strip(value) { return String(value == null ? "" : value).trim(); }

  // _int: a whole number, commas allowed (1,200), full-width digits read as digits; null when refused
  function wholeNumber(value, low, high) {
    var text = strip(value).replace(/,/g, "").replace(/[０-９]/g, function (c) {
      return String.fromCharCode(c.charCodeAt(0) - 0xFF10 + 48);
    });
    if (!/^-?[0-9]+$/.test(text)) return null;
    var number = BigInt(text);
    return number < low || number > high ? null : number;
  }

  function taxCategory(value) { // tax_category_parse
    var text = strip(value);
    return ALIASES[text] || ALIASES[text.toLowerCase()] || null;
  }

  function isBlank(row) { // LineForm.is_blank
    var quantity = strip(field(row, "quantity").value);
    return !strip(field(row, "description").value) && !strip(field(row, "unit_price").value) &&
      (quantity === "" || quantity === "1");
  }

  // totals_preview: null when a filled line's numbers or rate would be refused or a sum is impossible
  function totals(rule, taxInclusive) {
    var sums = { "10": 0n, "8": 0n, "exempt": 0n };
    var rows = lineRows();
    for (var i = 0; i < rows.length; i++) {
      if (isBlank(rows[i])) continue;
      var rawQuantity = strip(field(rows[i], "quantity").value);
      var quantity = rawQuantity === "" ? 1n : wholeNumber(rawQuantity, 1n, MAX_QUANTITY);
      var price = wholeNumber(field(rows[i], "unit_price").value, -MAX_UNIT_PRICE, MAX_UNIT_PRICE);
      var category = taxCategory(field(rows[i], "tax_category").value);
      if (quantity === null || price === null || category === null) return null;
      sums[category] += quantity * price;
    }
    if (sums["10"] < 0n || sums["8"] < 0n || sums.exempt < 0n) return null;
    var out = { subtotal_exempt: sums.exempt };
    ["10", "8"].forEach(function (rate) {
      var r = RATES[rate];
      var tax = taxInclusive ? roundDiv(sums[rate] * r, 100n + r, rule) : roundDiv(sums[rate] * r, 100n, rule);
      out["tax_" + rate] = tax;
      out["subtotal_" + rate] = taxInclusive ? sums[rate] - tax : sums[rate];
    });
    out.total = out.subtotal_10 + out.tax_10 + out.subtotal_8 + out.tax_8 + out.subtotal_exempt;
    return out.total > MAX_TOTAL ? null : out;
  }

  function yen(value) { // the yen template filter: 1,234円
    return value.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",") + "円";
  }

  // --- the page ----------------------------------------------------------------------------------------
  var totalsBox = form.querySelector("[data-totals]");
  var note = form.querySelector("[data-totals-note]");
  var subtotalHeading = form.querySelector("[data-subtotal-heading]");
  var taxInclusiveBox = form.querySelector("input[name='tax_inclusive']");
  var legendPattern = template.content.querySelector("legend").textContent;
  var removePattern = template.content.querySelector("[data-remove-line]").textContent;
  var timer = null;

  function lineRows() { return Array.prototype.slice.call(rowsBox.querySelectorAll("[data-line-row]")); }
  function field(row, name) { return row.querySelector("[name$='-" + name + "']"); }
  function setText(el, text) { if (el && el.textContent !== text) el.textContent = text; }

  function showTotals() {
    timer = null;
    if (!totalsBox) return;
    var inclusive = !!(taxInclusiveBox && taxInclusiveBox.checked);
    if (subtotalHeading) setText(subtotalHeading, subtotalHeading.dataset[inclusive ? "inclusive" : "exclusive"]);
    var result = totals(form.dataset.taxRounding, inclusive);
    totalsBox.querySelectorAll("[data-total]").forEach(function (cell) {
      setText(cell, result ? yen(result[cell.dataset.total]) : "—");
    });
    if (note) setText(note, result ? "" : note.dataset.unavailable);
  }

  function later() { // while typing: once the typing pauses, so the live region speaks once
    if (timer) clearTimeout(timer);
    timer = setTimeout(showTotals, 300);
  }

  function renumber() {
    var rows = lineRows();
    rows.forEach(function (row, i) {
      row.id = "line-" + (i + 1);
      row.querySelectorAll("[id], [name], [for], [aria-describedby]").forEach(function (el) {
        ["id", "name", "for", "aria-describedby"].forEach(function (attr) {
          var value = el.getAttribute(attr);
          if (value) el.setAttribute(attr, value.replace(/lines-\d+-/g, "lines-" + i + "-"));
        });
      });
      setText(row.querySelector("legend"), legendPattern.replace("__num__", i + 1));
      var remove = row.querySelector("[data-remove-line]");
      remove.value = String(i);
      setText(remove, removePattern.replace("__num__", i + 1));
      remove.hidden = rows.length <= 1; // the last row is cleared, not removed
    });
    totalForms.value = String(rows.length);
    addButton.disabled = maxForms ? rows.length >= Number(maxForms.value) : false;
  }

  function addRow() {
    var index = lineRows().length;
    var holder = document.createElement("template");
    holder.innerHTML = template.innerHTML.replace(/__prefix__/g, String(index)).replace(/__num__/g, String(index + 1));
    var row = holder.content.querySelector("[data-line-row]");
    rowsBox.insertBefore(row, template);
    renumber();
    field(row, "description").focus();
    showTotals();
  }

  function removeRow(row) {
    var rows = lineRows();
    var index = rows.indexOf(row);
    if (index < 0 || rows.length <= 1) return;
    if (initialForms && index < Number(initialForms.value)) initialForms.value = String(Number(initialForms.value) - 1);
    row.remove();
    renumber();
    rows = lineRows();
    field(rows[Math.min(index, rows.length - 1)], "description").focus();
    if (status) setText(status, rowsBox.dataset.removed.replace("__num__", index + 1));
    showTotals();
  }

  form.addEventListener("click", function (event) {
    var button = event.target.closest("button");
    if (!button || !form.contains(button)) return;
    if (button.hasAttribute("data-add-line")) {
      event.preventDefault();
      addRow();
    } else if (button.hasAttribute("data-remove-line")) {
      event.preventDefault();
      removeRow(button.closest("[data-line-row]"));
    }
  });
  form.addEventListener("input", function (event) {
    if (event.target.closest("[data-line-row]")) later();
  });
  form.addEventListener("change", showTotals);

  renumber();
  showTotals();
})();
