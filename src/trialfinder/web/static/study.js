/* trialfinder study pages: the site filter box, share and print. Everything works without this script
   (the site list is complete HTML; the share link is a plain link); the script only adds conveniences. */
(function () {
  "use strict";
  function siteFilter() {
    var box = document.querySelector("[data-site-filter]");
    if (!box) return;
    var input = box.querySelector("input");
    var count = document.getElementById("site-filter-count");
    var groups = document.querySelectorAll("#site-groups details.country");
    box.hidden = false;
    input.addEventListener("input", function () {
      var q = input.value.trim().toLowerCase();
      var shown = 0;
      for (var i = 0; i < groups.length; i++) {
        var g = groups[i];
        var sites = g.querySelectorAll("li.site");
        var inGroup = 0;
        for (var j = 0; j < sites.length; j++) {
          var match = !q || sites[j].textContent.toLowerCase().indexOf(q) >= 0;
          sites[j].hidden = !match;
          if (match) inGroup++;
        }
        g.hidden = inGroup === 0;
        if (q && inGroup) g.open = true;
        shown += inGroup;
      }
      count.textContent = q ? (shown === 1 ? "1 site matches" : shown + " sites match") : "";
    });
  }
  function shareAndPrint() {
    var share = document.querySelector("[data-share]");
    if (share) {
      share.addEventListener("click", function (event) {
        var url = share.getAttribute("href");
        var absolute = new URL(url, location.href).href;
        if (navigator.share) {
          event.preventDefault();
          navigator.share({ title: document.title, url: absolute }).catch(function () {});
        } else if (navigator.clipboard) {
          event.preventDefault();
          navigator.clipboard.writeText(absolute).then(function () {
            share.textContent = "Link copied";
          }, function () { location.href = url; });
        }
      });
    }
    var print = document.querySelector("[data-print]");
    if (print) { print.hidden = false; print.addEventListener("click", function () { window.print(); }); }
    // print every collapsed part (results tables, site groups), then restore what the reader had open
    var reopened = [];
    window.addEventListener("beforeprint", function () {
      var closed = document.querySelectorAll("details:not([open])");
      for (var i = 0; i < closed.length; i++) { closed[i].open = true; reopened.push(closed[i]); }
    });
    window.addEventListener("afterprint", function () {
      reopened.forEach(function (d) { d.open = false; });
      reopened = [];
    });
  }
  function openOnWideScreens() {
    // "On this page" starts collapsed so a phone shows the study first; wide screens have room for it
    if (!window.matchMedia || !window.matchMedia("(min-width: 40rem)").matches) return;
    var boxes = document.querySelectorAll("details[data-open-wide]");
    for (var i = 0; i < boxes.length; i++) boxes[i].open = true;
  }
  function start() { openOnWideScreens(); siteFilter(); shareAndPrint(); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
