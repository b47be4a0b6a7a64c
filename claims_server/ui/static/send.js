// Ready to send: "select all" for the claims table, and a live count and total of the selection.
// Every row keeps its own labelled checkbox; without this script "Send all ready" still works.
(function () {
  "use strict";
  var all = document.getElementById("select-all");
  var form = document.getElementById("send-form");
  var status = document.getElementById("selection");
  if (!form) { return; }
  var boxes = form.querySelectorAll('input[name="claims"]');

  function dollars(cents) {
    var whole = Math.floor(cents / 100).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    var rest = (cents % 100).toString();
    return "$" + whole + "." + (rest.length < 2 ? "0" + rest : rest);
  }

  function update() {
    var count = 0;
    var cents = 0;
    boxes.forEach(function (box) {
      if (box.checked) {
        count += 1;
        cents += parseInt(box.getAttribute("data-cents"), 10) || 0;
      }
    });
    if (status) {
      status.textContent = count ? count + " selected, " + dollars(cents) : "None selected.";
    }
    if (all) {
      all.checked = count > 0 && count === boxes.length;
      all.indeterminate = count > 0 && count < boxes.length;
    }
  }

  if (all) {
    all.addEventListener("change", function () {
      boxes.forEach(function (box) { box.checked = all.checked; });
      update();
    });
  }
  boxes.forEach(function (box) { box.addEventListener("change", update); });
  update();
}());
