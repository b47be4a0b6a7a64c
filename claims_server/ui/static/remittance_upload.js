// Send the chosen 835 as the raw request body (never multipart: see claims_server/ui/remittances.py),
// then open its dry-run preview. Errors are shown next to the file field.
(function () {
  "use strict";
  var form = document.getElementById("upload-835");
  if (!form) { return; }
  var input = document.getElementById("f-file");
  var error = document.getElementById("f-file-error");
  var button = form.querySelector("button[type=submit]");

  function show(message) {
    error.textContent = message;
    error.hidden = false;
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", "f-file-hint f-file-error");
    input.focus();
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    error.hidden = true;
    input.removeAttribute("aria-invalid");
    var file = input.files && input.files[0];
    if (!file) { show("Choose an 835 file first."); return; }
    var limit = parseInt(form.dataset.maxBytes || "0", 10);
    if (limit && file.size > limit) { show("The file is larger than the limit of " + limit + " bytes."); return; }
    button.disabled = true;
    fetch(form.action, {
      method: "POST",
      body: file,
      credentials: "same-origin",
      headers: { "Content-Type": "application/edi-x12", "X-CSRF-Token": form.dataset.csrf, "Accept": "application/json" }
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (response.ok && body.preview) { window.location.assign(body.preview); return; }
        var detail = body.detail || ("The upload was refused (" + response.status + ").");
        if (body.errors && body.errors.length) { detail += " " + body.errors.join(" "); }
        show(detail);
        button.disabled = false;
      });
    }).catch(function () {
      show("The upload did not reach the server. Check the connection and try again.");
      button.disabled = false;
    });
  });
})();
