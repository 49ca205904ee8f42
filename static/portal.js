/* Applicant portal: small progressive enhancements. Every page works without this file. */
(function () {
  "use strict";

  // A form sent once: its buttons are disabled while the page loads (the server also copes
  // with a second submission).
  document.querySelectorAll("form[data-once]").forEach(function (form) {
    form.addEventListener("submit", function () {
      window.setTimeout(function () {
        form.querySelectorAll("button[type=submit], input[type=submit]").forEach(function (button) {
          button.disabled = true;
        });
        form.setAttribute("aria-busy", "true");
      }, 0);
    });
  });

  document.querySelectorAll("form[data-line-form]").forEach(function (form) {
    var category = form.elements.namedItem("category");
    var months = form.querySelector("[data-licence-only]");

    // The licence duration only matters for a licence.
    function toggleMonths() {
      if (!months || !category) { return; }
      var wrapper = months.closest(".mb-3") || months;
      wrapper.hidden = category.value !== "licence";
    }
    if (category) {
      category.addEventListener("change", toggleMonths);
      toggleMonths();
    }

    // Live estimation: what the rules would compute with the line being typed.
    var url = form.getAttribute("data-estimation-url");
    var live = document.querySelector("[data-estimation-live]");
    var current = document.querySelector("[data-estimation-amount]");
    if (!url || !live) { return; }
    var timer = null;
    var latest = 0;

    function estimate() {
      var params = new URLSearchParams();
      ["category", "amount_ht", "pack", "months", "label"].forEach(function (name) {
        var field = form.elements.namedItem(name);
        if (field && field.value) { params.set(name, field.value); }
      });
      if (!params.get("category") || !params.get("amount_ht")) {
        live.classList.add("d-none");
        return;
      }
      var ticket = ++latest;
      fetch(url + "?" + params.toString(), {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (ticket !== latest) { return; }
          if (!data || !data.with_candidate) {
            live.textContent = data && data.candidate_error ? data.candidate_error : "";
            live.classList.toggle("d-none", !live.textContent);
            return;
          }
          var text = "Avec cette dépense, l'aide estimée serait de " + data.amount_display;
          if (current) { text += " (aujourd'hui : " + current.textContent.trim() + ")"; }
          text += ".";
          var blocking = data.findings.filter(function (f) {
            return !f.ok && f.blocking && f.code.indexOf("campaign.") !== 0;
          });
          if (blocking.length) { text += " " + blocking[0].message; }
          live.textContent = text;
          live.classList.remove("d-none");
        })
        .catch(function () { live.classList.add("d-none"); });
    }

    form.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(estimate, 400);
    });
    form.addEventListener("change", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(estimate, 100);
    });
  });
})();
