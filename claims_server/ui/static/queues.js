// "Select all" for the work-queue table; every row keeps its own labelled checkbox.
(function () {
  "use strict";
  var all = document.getElementById("select-all");
  if (!all) { return; }
  all.addEventListener("change", function () {
    document.querySelectorAll('input[name="items"]').forEach(function (box) { box.checked = all.checked; });
  });
}());
