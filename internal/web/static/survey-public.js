// The public survey page works without JavaScript; this only makes it kinder: the city list
// follows the chosen province, text answers count their characters, and the submit button
// cannot be pressed twice.
(function () {
  "use strict";

  function syncCities(region) {
    var prov = region.querySelector("[data-province]");
    var city = region.querySelector("[data-city]");
    if (!prov || !city) return;
    var groups = city.querySelectorAll("optgroup");
    for (var i = 0; i < groups.length; i++) {
      var show = groups[i].label === prov.value;
      groups[i].hidden = !show;
      groups[i].disabled = !show;
    }
    var sel = city.options[city.selectedIndex];
    if (sel && sel.value && sel.getAttribute("data-of") !== prov.value) city.value = "";
    // A municipality is its own only city: choose it.
    var mine = city.querySelectorAll('option[data-of="' + prov.value.replace(/"/g, "") + '"]');
    if (mine.length === 1 && !city.value) city.value = mine[0].value;
  }

  document.querySelectorAll("[data-region]").forEach(function (region) {
    syncCities(region);
    region.querySelector("[data-province]").addEventListener("change", function () { syncCities(region); });
  });

  document.querySelectorAll("textarea[data-counter]").forEach(function (area) {
    var max = parseInt(area.getAttribute("maxlength"), 10);
    var out = document.createElement("span");
    out.className = "sp-counter";
    area.insertAdjacentElement("afterend", out);
    function update() { out.textContent = Array.from(area.value).length + " / " + max; }
    area.addEventListener("input", update);
    update();
  });

  var form = document.querySelector(".sp-form");
  if (form) {
    form.addEventListener("submit", function () {
      var btn = form.querySelector(".sp-button");
      // Disable after the browser has taken the form's values.
      setTimeout(function () { btn.disabled = true; }, 0);
    });
  }
})();
