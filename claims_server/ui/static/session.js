// Session timeout warning (HIPAA 164.312(a)(2)(iii) automatic logoff is enforced by the
// server; this only tells the user first). Two minutes before the idle limit a dialog
// offers "Stay signed in", which makes one cheap authenticated request; once the limit
// has passed the dialog says so, and the next click lands on the sign-in page anyway.
(function () {
  "use strict";
  var body = document.body;
  var minutes = parseInt(body.dataset.idleMinutes || "0", 10);
  var dialog = document.getElementById("session-warning");
  if (!minutes || !dialog) { return; }
  var stay = document.getElementById("session-stay");
  var again = document.getElementById("session-sign-in");
  var text = document.getElementById("session-warning-text");
  var warnTimer = null, endTimer = null;

  function open() { if (!dialog.open) { dialog.showModal(); } stay.focus(); }
  function ended() {
    text.textContent = "Your session has ended. Sign in again to continue.";
    // Back to this page after signing in (the server keeps next= only for a workspace path).
    again.href = body.dataset.signInUrl + "?next=" + encodeURIComponent(window.location.pathname);
    stay.hidden = true; again.hidden = false; open(); again.focus();
  }
  function arm() {
    clearTimeout(warnTimer); clearTimeout(endTimer);
    warnTimer = setTimeout(open, Math.max(0, (minutes - 2) * 60000));
    endTimer = setTimeout(ended, minutes * 60000);
  }
  stay.addEventListener("click", function () {
    var options = { credentials: "same-origin", cache: "no-store", redirect: "manual" };
    fetch(body.dataset.keepaliveUrl, options).then(function (r) {
      if (r.status === 204) { dialog.close(); arm(); } else { ended(); }
    }, ended);
  });
  arm();
}());
