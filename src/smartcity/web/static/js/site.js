// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";
  // Keep the reader's place (the #fragment) when switching language on the same page.
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-keep-hash]");
    if (link && window.location.hash && link.href.indexOf("#") === -1) {
      link.href = link.href + window.location.hash;
    }
  });
  // After a search, move focus to the announced result count so screen readers hear it.
  var status = document.querySelector("[data-focus-on-load]");
  if (status && window.location.search) {
    status.setAttribute("tabindex", "-1");
    status.focus();
  }
})();
