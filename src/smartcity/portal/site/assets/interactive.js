// Progressive enhancement only: every form works without this file.
(function () {
  "use strict";
  // A form sent back with mistakes: bring its error summary into view and focus it, so
  // keyboard and screen-reader users start from the list of what to fix.
  var summary = document.querySelector("[data-error-summary]");
  if (summary) {
    var details = summary.closest("details");
    if (details) { details.open = true; }
    summary.focus();
    // Scrolling to the URL's #fragment at load time can take the focus away again.
    window.addEventListener("load", function () {
      window.setTimeout(function () { summary.focus(); }, 0);
    });
  }
  // Error-summary links: focus the field itself (a plain #link only scrolls to it).
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest(".error-summary a[href^='#']");
    if (!link) { return; }
    var field = document.getElementById(link.getAttribute("href").slice(1));
    if (field) {
      event.preventDefault();
      field.focus();
    }
  });
})();
