// Import charges: send the chosen CSV as the raw request body (never multipart: see
// claims_server/ui/charge_imports.py) to be checked, show the server's per-row preview or
// refusal, and on "Import" send the same file again to import it. The file stays in the
// browser between the two requests; the server keeps nothing of a check.
(function () {
  "use strict";
  var form = document.getElementById("charge-upload");
  if (!form) { return; }
  var input = document.getElementById("f-file");
  var practice = document.getElementById("f-practice");
  var error = document.getElementById("f-file-error");
  var result = document.getElementById("charge-result");
  var status = document.getElementById("charge-status");
  var check = form.querySelector("button[type=submit]");
  var checked = null; // the File the preview on the page belongs to

  function fieldError(message) {
    error.textContent = message;
    error.hidden = false;
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", "f-file-hint f-file-error");
    input.focus();
  }

  function clearError() {
    error.hidden = true;
    input.removeAttribute("aria-invalid");
    input.setAttribute("aria-describedby", "f-file-hint");
  }

  function target(url) {
    return practice && practice.value ? url + "?practice=" + encodeURIComponent(practice.value) : url;
  }

  function send(url, file) {
    return fetch(target(url), {
      method: "POST",
      body: file,
      credentials: "same-origin",
      headers: { "Content-Type": "text/csv", "X-CSRF-Token": form.dataset.csrf, "Accept": "text/html" }
    }).then(function (response) {
      return response.text().then(function (html) { return { response: response, html: html }; });
    });
  }

  function show(html) {
    // The fragment is rendered (and escaped) by the server's template; it holds no script.
    result.innerHTML = html;
    var heading = document.getElementById("result-heading");
    if (heading) { heading.focus(); }
    var button = document.getElementById("charge-import-button");
    if (button) { button.addEventListener("click", importFile); }
  }

  function failed(answer) {
    if (answer.html && answer.response.status < 500 && answer.html.indexOf("result-heading") >= 0) {
      show(answer.html);
    } else {
      fieldError("The server refused the file (" + answer.response.status + "). Try again, or check the file.");
    }
  }

  function importFile() {
    var button = document.getElementById("charge-import-button");
    if (!checked) { return; }
    button.disabled = true;
    status.textContent = "Importing…";
    send(form.dataset.import, checked).then(function (answer) {
      var location = answer.response.headers.get("X-Import-Location");
      if (answer.response.ok && location) { window.location.assign(location); return; }
      status.textContent = "";
      failed(answer);
    }).catch(function () {
      button.disabled = false;
      status.textContent = "The import did not reach the server. Check the connection and try again.";
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    clearError();
    var file = input.files && input.files[0];
    if (!file) { fieldError("Choose a charge file (CSV) first."); return; }
    var limit = parseInt(form.dataset.maxBytes || "0", 10);
    if (limit && file.size > limit) { fieldError("The file is larger than the limit of " + limit + " bytes."); return; }
    check.disabled = true;
    checked = null;
    result.innerHTML = "";
    status.textContent = "Checking the file…";
    send(form.action, file).then(function (answer) {
      check.disabled = false;
      status.textContent = "";
      if (answer.response.ok) { checked = file; show(answer.html); return; }
      failed(answer);
    }).catch(function () {
      check.disabled = false;
      status.textContent = "";
      fieldError("The file did not reach the server. Check the connection and try again.");
    });
  });
})();
