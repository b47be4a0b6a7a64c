// Charge entry (ui/charges.py): code suggestions as an ARIA combobox with a listbox
// (aria-activedescendant), lines added, moved and removed from the keyboard, and the
// scrubber's findings beside their fields as the biller types (POST /ui/claims/check,
// debounced; the same validate service a save runs). Without this file the form still posts.
(function () {
  "use strict";
  var form = document.getElementById("charge-form");
  if (!form) { return; }
  var linesBox = document.getElementById("lines");
  var template = document.getElementById("line-template");
  var summary = document.getElementById("check-summary");
  var total = document.getElementById("claim-total");
  var csrf = form.querySelector('input[name="csrf_token"]').value;
  var maxLines = parseInt(form.dataset.maxLines || "50", 10);
  var LINE_NAME = /line-(\d+|__i__)-/g;
  var touched = {};

  // Fields the server already refused stay shown until the biller changes them.
  form.querySelectorAll(".fx .field-error").forEach(function (p) {
    touched[p.parentNode.id.slice(3)] = true;
  });

  function announce(text) { summary.textContent = text; }

  // -- lines ---------------------------------------------------------------------------------

  function lines() { return Array.prototype.slice.call(linesBox.querySelectorAll("fieldset.line")); }

  function field(set, name) { return set.querySelector('[name$="-' + name + '"]'); }

  function renumber() {
    lines().forEach(function (set, i) {
      var prefix = "line-" + i + "-";
      [set].concat(Array.prototype.slice.call(set.querySelectorAll("*"))).forEach(function (el) {
        ["id", "name", "for", "aria-describedby", "aria-controls", "aria-activedescendant"].forEach(function (attr) {
          var value = el.getAttribute(attr);
          if (value && value.indexOf("line-") !== -1) { el.setAttribute(attr, value.replace(LINE_NAME, prefix)); }
        });
      });
      set.id = "line-" + i;
      set.dataset.line = String(i);
      set.querySelector("legend").textContent = "Line " + (i + 1);
      set.querySelector(".drug summary").textContent = "Drug (NDC) for line " + (i + 1);
      set.querySelectorAll("button[data-op]").forEach(function (button) {
        button.value = button.dataset.op + "-" + i;
        button.setAttribute("aria-label", button.dataset.label.replace("{n}", String(i + 1)));
      });
    });
  }

  function addLine(after) {
    if (lines().length >= maxLines) { announce("A claim has at most " + maxLines + " lines."); return null; }
    var set = template.content.querySelector("fieldset.line").cloneNode(true);
    linesBox.insertBefore(set, after ? after.nextSibling : null);
    renumber();
    set.querySelectorAll("[data-lookup]").forEach(combobox);
    return set;
  }

  function focusLine(set) {
    var input = set && field(set, "procedure");
    if (input) { input.focus(); }
  }

  function lineOp(button) {
    var set = button.closest("fieldset.line");
    var op = button.dataset.op;
    if (op === "add") {
      focusLine(addLine(lines().slice(-1)[0]));
    } else if (op === "remove") {
      var number = lines().indexOf(set) + 1;
      var next = set.nextElementSibling || set.previousElementSibling;
      set.remove();
      if (!lines().length) { next = addLine(null); }
      renumber();
      focusLine(next);
      announce("Line " + number + " removed.");
    } else if (op === "up" && set.previousElementSibling) {
      linesBox.insertBefore(set, set.previousElementSibling);
      renumber();
      button.focus();
      announce("Line moved up: now line " + (lines().indexOf(set) + 1) + ".");
    } else if (op === "down" && set.nextElementSibling) {
      linesBox.insertBefore(set.nextElementSibling, set);
      renumber();
      button.focus();
      announce("Line moved down: now line " + (lines().indexOf(set) + 1) + ".");
    }
    scheduleCheck();
  }

  form.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-op]");
    if (button && form.contains(button)) {
      event.preventDefault();
      lineOp(button);
    }
  });

  function focusables() {
    return Array.prototype.slice.call(form.querySelectorAll("input, select, button, summary"))
      .filter(function (el) { return el.type !== "hidden" && el.tabIndex >= 0 && !el.disabled && el.offsetParent !== null; });
  }

  // Enter never saves by accident: in a line it goes to the next line (adding one after the
  // last), elsewhere to the next field. Buttons and summaries keep their own Enter.
  form.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || event.defaultPrevented || event.isComposing || event.ctrlKey || event.altKey) { return; }
    var target = event.target;
    if (target.tagName !== "INPUT" && target.tagName !== "SELECT") { return; }
    event.preventDefault();
    var set = target.closest("fieldset.line");
    if (set) {
      var all = lines();
      focusLine(all[all.indexOf(set) + 1] || addLine(set));
      scheduleCheck();
      return;
    }
    var list = focusables();
    var next = list[list.indexOf(target) + 1];
    if (next) { next.focus(); }
  });

  // -- code suggestions ----------------------------------------------------------------------

  function dateFor(input) {
    var set = input.closest("fieldset.line");
    var own = set && field(set, "service_date");
    var visit = document.getElementById("f-service_date");
    return (own && own.value) || (visit && visit.value) || "";
  }

  function describe(input, text) {
    var desc = document.getElementById("d-" + input.id.slice(2));
    if (desc) { desc.textContent = text || ""; }
  }

  function combobox(input) {
    if (input.dataset.combobox) { return; }
    input.dataset.combobox = "1";
    var kind = input.dataset.lookup;
    var list = document.createElement("ul");
    list.className = "listbox";
    list.setAttribute("role", "listbox");
    list.id = "lb-" + input.id.slice(2);
    var label = form.querySelector('label[for="' + input.id + '"]');
    list.setAttribute("aria-label", "Suggestions for " + (label ? label.textContent : "the code"));
    list.hidden = true;
    input.parentNode.insertBefore(list, input.nextSibling);
    input.setAttribute("aria-controls", list.id);
    var items = [], active = -1, timer = null, asked = 0;

    function close() {
      list.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      active = -1;
    }
    function highlight(i) {
      var options = list.children;
      if (active >= 0 && options[active]) { options[active].setAttribute("aria-selected", "false"); }
      active = i;
      if (i >= 0 && options[i]) {
        options[i].setAttribute("aria-selected", "true");
        input.setAttribute("aria-activedescendant", options[i].id);
        options[i].scrollIntoView({ block: "nearest" });
      }
    }
    function choose(i) {
      input.value = items[i].code;
      describe(input, items[i].description || "");
      close();
      touched[input.name] = true;
      scheduleCheck();
    }
    function show(found) {
      items = found;
      list.textContent = "";
      found.forEach(function (item, i) {
        var option = document.createElement("li");
        option.id = list.id + "-" + i;
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", "false");
        var code = document.createElement("span");
        code.className = "code";
        code.textContent = item.code;
        option.appendChild(code);
        if (item.fee) {
          var fee = document.createElement("span");
          fee.className = "fee";
          fee.textContent = "$" + item.fee;
          option.appendChild(fee);
        }
        option.appendChild(document.createTextNode(item.description ? " " + item.description : ""));
        option.addEventListener("mousedown", function (event) { event.preventDefault(); choose(i); });
        list.appendChild(option);
      });
      active = -1;
      input.removeAttribute("aria-activedescendant");
      list.hidden = !found.length;
      input.setAttribute("aria-expanded", found.length ? "true" : "false");
    }
    function suggest() {
      var query = input.value.trim();
      if (!query) { close(); return; }
      var mine = ++asked;
      var url = form.dataset.lookupUrl.replace("KIND", kind) + "?q=" + encodeURIComponent(query) +
        "&dos=" + encodeURIComponent(dateFor(input)) +
        (kind === "procedures" ? "&practice=" + encodeURIComponent(form.dataset.practice) : "");
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : { items: [] }; })
        .then(function (data) { if (mine === asked && document.activeElement === input) { show(data.items || []); } })
        .catch(close);
    }
    input.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(suggest, 150); });
    input.addEventListener("keydown", function (event) {
      if (event.key === "ArrowDown") {
        event.preventDefault();
        if (list.hidden) { suggest(); } else { highlight(Math.min(active + 1, items.length - 1)); }
      } else if (event.key === "ArrowUp" && !list.hidden) {
        event.preventDefault();
        highlight(Math.max(active - 1, 0));
      } else if (event.key === "Enter" && !list.hidden && active >= 0) {
        event.preventDefault();  // takes the suggestion; the form's Enter handler sees defaultPrevented
        choose(active);
      } else if (event.key === "Escape" && !list.hidden) {
        event.preventDefault();
        close();
      } else if (event.key === "Tab" || event.key === "Enter") {
        asked++;  // a late answer must not reopen the list
        close();
      }
    });
    input.addEventListener("blur", function () { asked++; setTimeout(close, 150); });
  }

  form.querySelectorAll("[data-lookup]").forEach(combobox);

  // -- checking as the biller types ----------------------------------------------------------

  var checkTimer = null, checked = 0;

  function scheduleCheck() { clearTimeout(checkTimer); checkTimer = setTimeout(check, 400); }

  function paragraph(className, strong, text, hint) {
    var p = document.createElement("p");
    p.className = className;
    if (strong) {
      var s = document.createElement("strong");
      s.textContent = strong;
      p.appendChild(s);
      p.appendChild(document.createTextNode(" "));
    }
    p.appendChild(document.createTextNode(text));
    if (hint) {
      var fix = document.createElement("span");
      fix.className = "fix";
      fix.textContent = "Fix: " + hint;
      p.appendChild(document.createTextNode(" "));
      p.appendChild(fix);
    }
    return p;
  }

  function show(data) {
    form.querySelectorAll(".fx").forEach(function (box) {
      var name = box.id.slice(3);
      var error = data.errors[name];
      var found = data.findings[name] || [];
      box.textContent = "";
      var shownError = error && (touched[name] || name.charAt(0) === "_") && name !== "_lines" && name !== "_diagnoses";
      if (shownError) { box.appendChild(paragraph("field-error", "", error)); }
      found.forEach(function (f) {
        var severity = f.severity.charAt(0).toUpperCase() + f.severity.slice(1);
        box.appendChild(paragraph("finding finding-" + f.severity, severity + ":", f.message, f.hint));
      });
      var input = document.getElementById("f-" + name);
      if (input) {
        var bad = shownError || found.some(function (f) { return f.severity === "error"; });
        if (bad) { input.setAttribute("aria-invalid", "true"); } else { input.removeAttribute("aria-invalid"); }
        var wrapper = input.closest(".field");
        if (wrapper) { wrapper.classList.toggle("has-error", !!shownError); }
      }
    });
    form.querySelectorAll(".code-desc").forEach(function (desc) {
      var name = desc.id.slice(2);
      if (/-charge$/.test(name)) {
        desc.textContent = (data.fee_texts && data.fee_texts[name]) || "";  // "Fee schedule: $12.50 × 3 = $37.50"
        document.getElementById("f-" + name).placeholder = data.fees[name] || "";
      } else if (document.activeElement !== document.getElementById("f-" + name) || data.descriptions[name]) {
        desc.textContent = data.descriptions[name] || "";
      }
    });
    total.textContent = data.total;
    var text = data.counts.errors || data.counts.warnings
      ? "The scrubber finds " + data.counts.errors + " error(s) and " + data.counts.warnings + " warning(s); each is shown beside its field."
      : (Object.keys(data.errors).length ? "Some fields are not complete yet." : "The scrubber finds nothing to fix.");
    if (summary.textContent !== text) { summary.textContent = text; }
  }

  function check() {
    var mine = ++checked;
    var body = new URLSearchParams(new FormData(form));  // the workspace takes urlencoded forms
    body.delete("op");
    body.delete("intent");
    if (form.dataset.claim) { body.append("claim", form.dataset.claim); }
    fetch(form.dataset.checkUrl, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, Accept: "application/json" }
    })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data && mine === checked) { show(data); } })
      .catch(function () { /* the save still checks everything */ });
  }

  form.addEventListener("input", function (event) { if (event.target.name) { touched[event.target.name] = true; } scheduleCheck(); });
  form.addEventListener("change", function (event) { if (event.target.name) { touched[event.target.name] = true; } scheduleCheck(); });
}());
