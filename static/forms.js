/* Loaded on every page (base.html). Every page works without it. */
(function () {
  "use strict";

  // After a failed submit, the error summary is focused: a screen reader reads it (role=alert)
  // and the keyboard starts from it; its links lead to each field in error.
  var summary = document.querySelector("[data-error-summary]");
  if (summary) {
    summary.focus();
    summary.querySelectorAll("a[href^='#']").forEach(function (link) {
      link.addEventListener("click", function (event) {
        var target = document.getElementById(link.getAttribute("href").slice(1));
        if (!target) { return; }
        event.preventDefault();
        var details = target.closest("details");
        if (details) { details.open = true; }
        target.focus();
        target.scrollIntoView({block: "center"});
      });
    });
  }

  // A confirmation step opened: its confirm button gets the focus.
  document.querySelectorAll("details.confirm-step").forEach(function (details) {
    details.addEventListener("toggle", function () {
      if (details.open) {
        var button = details.querySelector("form button[type=submit]");
        if (button) { button.focus(); }
      }
    });
  });
})();
