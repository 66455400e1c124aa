// siyu console: small progressive enhancements. Every page works without this file.
(function () {
  "use strict";

  // A form with data-confirm asks first, then sends confirm=yes. Without JavaScript the
  // server answers the unconfirmed POST with a confirmation page instead.
  document.addEventListener("submit", function (e) {
    var form = e.target;
    var msg = form.getAttribute("data-confirm");
    if (!msg) return;
    if (!window.confirm(msg)) {
      e.preventDefault();
      return;
    }
    if (!form.querySelector('input[name="confirm"]')) {
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = "confirm";
      input.value = "yes";
      form.appendChild(input);
    }
  });

  // A button with data-copy="#selector" copies that field's value.
  document.addEventListener("click", function (e) {
    var btn = e.target.closest("[data-copy]");
    if (!btn) return;
    var field = document.querySelector(btn.getAttribute("data-copy"));
    if (!field) return;
    field.select();
    var done = function () {
      var label = btn.textContent;
      btn.textContent = btn.getAttribute("data-copied") || label;
      setTimeout(function () { btn.textContent = label; }, 1600);
    };
    if (navigator.clipboard) {
      navigator.clipboard.writeText(field.value).then(done, function () {});
    } else if (document.execCommand("copy")) {
      done();
    }
  });

  // Filter selects apply at once; the Filter button stays for keyboards and no-JS.
  document.querySelectorAll("form.filters select").forEach(function (sel) {
    sel.addEventListener("change", function () { sel.form.submit(); });
  });
})();
