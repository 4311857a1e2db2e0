// Asks before a destructive form is sent: <form data-confirm="Revoke this token?"> shows the
// question in window.confirm() on submit; Cancel stops the submit. One listener on the document
// (no inline handler, so the Content-Security-Policy holds), so forms added later by htmx are
// covered too.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-confirm")) { return; }
    if (!window.confirm(form.getAttribute("data-confirm"))) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);
})();
