/* trialfinder maps: progressive enhancement. Pages list every site as HTML; this script adds a Leaflet
   map when Leaflet is loaded. Tiles come from the tile server when the browser is online; if they fail,
   the markers stay on a plain background and a note says so. Record text is only ever set as text. */
(function () {
  "use strict";
  function el(tag, text, href) {
    var node = document.createElement(tag);
    if (text) node.textContent = text;
    if (href) node.setAttribute("href", href);
    return node;
  }
  function popup(p) {
    var box = document.createElement("div");
    var title = p.href ? el("a", p.title || "", p.href) : el("strong", p.title || "");
    box.appendChild(title);
    if (p.text) { box.appendChild(document.createElement("br")); box.appendChild(el("span", p.text)); }
    if (p.status) { box.appendChild(document.createElement("br")); box.appendChild(el("em", p.status)); }
    return box;
  }
  function init(container) {
    var source = document.getElementById(container.getAttribute("data-map"));
    if (!source || typeof L === "undefined") { container.hidden = true; return; }
    var data;
    try { data = JSON.parse(source.textContent); } catch (e) { container.hidden = true; return; }
    if (!data.points || !data.points.length) { container.hidden = true; return; }
    var map = L.map(container, { scrollWheelZoom: false });
    var failed = false;
    var tiles = L.tileLayer(data.tiles, { attribution: data.attribution, maxZoom: 18 });
    tiles.on("tileerror", function () {
      if (failed) return;
      failed = true;
      var note = el("p", "Map tiles could not load (offline?); the list below has everything the map shows.");
      note.className = "map-note";
      container.parentNode.insertBefore(note, container.nextSibling);
    });
    tiles.addTo(map);
    var bounds = [];
    data.points.forEach(function (p) {
      var marker = L.circleMarker([p.lat, p.lon], { radius: 7, weight: 2, color: "#0b5394", fillOpacity: 0.7 });
      marker.bindPopup(function () { return popup(p); });
      marker.addTo(map);
      bounds.push([p.lat, p.lon]);
    });
    if (data.center) {
      L.circleMarker([data.center.lat, data.center.lon], { radius: 5, color: "#c0392b", fillOpacity: 1 }).addTo(map);
      bounds.push([data.center.lat, data.center.lon]);
    }
    if (bounds.length === 1) map.setView(bounds[0], 9); else map.fitBounds(bounds, { padding: [24, 24], maxZoom: 12 });
    container.setAttribute("data-ready", "1");
  }
  function start() {
    var maps = document.querySelectorAll("[data-map]");
    for (var i = 0; i < maps.length; i++) init(maps[i]);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
