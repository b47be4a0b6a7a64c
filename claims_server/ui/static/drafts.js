// Typed text survives a session that ended (HIPAA automatic logoff): when a form is posted,
// its visible fields are kept in this tab's sessionStorage until the next page loads. If that
// page is the sign-in page (the session had ended; the server sends the user there with
// next= the form's page), the draft is kept; after signing in, back on the form's page, the
// fields are filled in again and a message says so. Nothing is re-sent: the user checks the
// text and presses the button again. Any other page load drops the draft, so typed text stays
// in the browser only between a submit and the next page. Passwords, hidden fields (CSRF
// token, idempotency keys, versions) and files are never kept.
(function () {
  "use strict";
  var KEY = "claims-server.form-draft";
  var store;
  try { store = window.sessionStorage; } catch (e) { return; }
  if (!store) { return; }
  var SKIP = { hidden: 1, password: 1, file: 1, submit: 1, button: 1, reset: 1, image: 1 };

  function read() {
    try { return JSON.parse(store.getItem(KEY) || "null"); } catch (e) { return null; }
  }
  function fieldsOf(form) {
    var out = [];
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.disabled || SKIP[el.type]) { return; }
      if (el.type === "checkbox" || el.type === "radio") {
        out.push({ name: el.name, value: el.value, checked: el.checked });
      } else if (el.type === "select-multiple") {
        out.push({ name: el.name, values: Array.prototype.filter.call(el.options, function (o) { return o.selected; }).map(function (o) { return o.value; }) });
      } else {
        out.push({ name: el.name, value: el.value });
      }
    });
    return out;
  }
  function restore(form, fields) {
    fields.forEach(function (f) {
      var els = Array.prototype.filter.call(form.elements, function (el) { return el.name === f.name && !SKIP[el.type]; });
      els.forEach(function (el) {
        if (el.type === "checkbox" || el.type === "radio") {
          if (el.value === f.value) { el.checked = !!f.checked; }
        } else if (el.type === "select-multiple") {
          Array.prototype.forEach.call(el.options, function (o) { o.selected = (f.values || []).indexOf(o.value) >= 0; });
        } else if (typeof f.value === "string") {
          el.value = f.value;
        }
      });
    });
    var note = document.createElement("p");
    note.className = "flash flash-error";
    note.id = "draft-restored";
    note.setAttribute("role", "status");
    note.textContent = "Your session had ended, so this form was not sent. What you typed is back in the form: check it and send it again.";
    form.parentNode.insertBefore(note, form);
  }

  var signIn = document.querySelector("form[data-sign-in]");
  var draft = read();
  if (draft && signIn) {
    draft.expired = true;
    store.setItem(KEY, JSON.stringify(draft));
    var kept = document.createElement("p");
    kept.className = "hint";
    kept.id = "draft-kept";
    kept.textContent = "What you typed on the previous page is kept in this browser tab and put back after you sign in.";
    signIn.parentNode.insertBefore(kept, signIn);
  } else if (draft) {
    store.removeItem(KEY);
    if (draft.expired && draft.page === window.location.pathname) {
      var target = Array.prototype.filter.call(document.forms, function (f) { return f.getAttribute("action") === draft.action; })[0];
      if (target) { restore(target, draft.fields || []); }
    }
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form || form === signIn || (form.getAttribute("method") || "").toLowerCase() !== "post" || form.hasAttribute("data-no-draft")) { return; }
    var fields = fieldsOf(form);
    if (!fields.length) { return; }
    try {
      store.setItem(KEY, JSON.stringify({ page: window.location.pathname, action: form.getAttribute("action"), fields: fields }));
    } catch (e) { /* storage full or refused: the form is sent anyway */ }
  }, true);
}());
