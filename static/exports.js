/* The progress of an export built by the worker: polled every two seconds, shown in place; the
   page reloads once the export is ready (or failed). The page works without this file. */
(function () {
  "use strict";
  var box = document.querySelector("[data-export-progress]");
  if (!box) {
    return;
  }
  var bar = box.querySelector("progress");
  var text = box.querySelector("[data-export-text]");
  function poll() {
    fetch(box.getAttribute("data-url"), {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (state) {
        if (!state) {
          return;
        }
        if (state.status !== "queued" && state.status !== "running") {
          window.location.reload();
          return;
        }
        if (state.rows_total) {
          bar.max = state.rows_total;
        }
        bar.value = state.rows_done;
        bar.textContent = state.text;
        if (text.textContent !== state.text) {
          text.textContent = state.text;
        }
        window.setTimeout(poll, 2000);
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 2000);
}());
