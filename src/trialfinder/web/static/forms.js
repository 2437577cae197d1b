/* trialfinder forms: a GET search form sends only the fields that have a value, so result URLs stay
   short and shareable (/search?cond=lupus&recruiting=open, not twenty empty parameters). Without script
   the server strips empty parameters with one redirect; this only saves that round trip. */
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form || (form.method || "").toLowerCase() !== "get") return;
    if ((form.getAttribute("action") || "") !== "/search") return;  // search forms only
    var near = form.elements.namedItem("near");
    var noPlace = !near || !near.value || !near.value.trim();
    var fields = form.querySelectorAll("input, select, textarea");
    for (var i = 0; i < fields.length; i++) {
      var f = fields[i];
      if (!f.name || f.disabled) continue;
      if ((f.type === "checkbox" || f.type === "radio") && !f.checked) continue;
      if (!f.value || !f.value.trim() || (f.name === "dist" && noPlace)) {
        f.disabled = true;
        (function (field) { setTimeout(function () { field.disabled = false; }, 0); })(f);
      }
    }
  });
  /* "Edit" on a phone opens the query form in place */
  document.addEventListener("click", function (event) {
    var link = event.target && event.target.closest ? event.target.closest("a[href='#refine']") : null;
    var form = document.getElementById("refine");
    if (!link || !form) return;
    event.preventDefault();
    form.classList.toggle("open");
    if (form.classList.contains("open")) { var first = form.querySelector("input, select"); if (first) first.focus(); }
  });
})();
