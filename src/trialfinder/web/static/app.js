/* trialfinder maps: progressive enhancement. Pages list every site as HTML; this script adds a Leaflet
   map. No request leaves the machine by default: the base layer is the bundled country outlines
   (/static/map/countries-110m.geojson); a tile server is used only when the operator sets one
   (TRIALFINDER_TILES_URL). Markers are focusable buttons (Tab, then Enter opens the popup) with their
   place, status and distance in the popup. Record text is only ever set as text. */
(function () {
  "use strict";
  var OUTLINES = "/static/map/countries-110m.geojson";
  function el(tag, text, href) {
    var node = document.createElement(tag);
    if (text) node.textContent = text;
    if (href) node.setAttribute("href", href);
    return node;
  }
  function statusText(s) {
    if (!s) return "";
    if (/^[A-Z_]+$/.test(s)) s = s.charAt(0) + s.slice(1).toLowerCase().replace(/_/g, " ");
    return s;
  }
  function km(a, b) {
    var r = Math.PI / 180, dLat = (b.lat - a.lat) * r, dLon = (b.lon - a.lon) * r;
    var h = Math.sin(dLat / 2) * Math.sin(dLat / 2) +
      Math.cos(a.lat * r) * Math.cos(b.lat * r) * Math.sin(dLon / 2) * Math.sin(dLon / 2);
    return 12742 * Math.asin(Math.min(1, Math.sqrt(h)));
  }
  function distanceText(p, center) {
    var d = typeof p.distanceKm === "number" ? p.distanceKm : (center ? km(center, p) : null);
    if (d === null) return "";
    return Math.round(d) + " km (" + Math.round(d / 1.609344) + " mi) from the searched place";
  }
  function popup(p, center) {
    var box = document.createElement("div");
    box.appendChild(p.href ? el("a", p.title || "", p.href) : el("strong", p.title || ""));
    var lines = [p.text, statusText(p.status), distanceText(p, center), p.count ? p.count : ""];
    lines.forEach(function (line) {
      if (!line) return;
      box.appendChild(document.createElement("br"));
      box.appendChild(el("span", String(line)));
    });
    return box;
  }
  function label(p, center) {
    return [p.title, p.text, statusText(p.status), distanceText(p, center), p.count]
      .filter(function (x) { return x; }).join(", ");
  }
  function outlines(map) {
    var xhr = new XMLHttpRequest();
    xhr.open("GET", OUTLINES);
    xhr.onload = function () {
      if (xhr.status !== 200) return;
      try {
        L.geoJSON(JSON.parse(xhr.responseText), {
          interactive: false,
          style: { color: "#6b7a8c", weight: 0.8, fillColor: "#eef1f4", fillOpacity: 1 }
        }).addTo(map).bringToBack();
      } catch (e) { /* the markers and the list stay usable */ }
    };
    xhr.send();
  }
  function init(container) {
    var source = document.getElementById(container.getAttribute("data-map"));
    if (!source || typeof L === "undefined") { container.hidden = true; return; }
    var data;
    try { data = JSON.parse(source.textContent); } catch (e) { container.hidden = true; return; }
    if (!data.points || !data.points.length) { container.hidden = true; return; }
    var map = L.map(container, { scrollWheelZoom: false, worldCopyJump: true });
    if (data.tiles) {
      var failed = false;
      var tiles = L.tileLayer(data.tiles, { attribution: data.attribution || "", maxZoom: 18 });
      tiles.on("tileerror", function () {
        if (failed) return;
        failed = true;
        outlines(map);
        var note = el("p", "Map tiles could not load; the map shows country outlines, and the list has everything the map shows.");
        note.className = "map-note";
        container.parentNode.insertBefore(note, container.nextSibling);
      });
      tiles.addTo(map);
    } else {
      container.classList.add("map-offline");
      outlines(map);
      map.attributionControl.addAttribution("Country outlines: Natural Earth");
    }
    var bounds = data.points.map(function (p) { return [p.lat, p.lon]; });
    var center = data.center || null;
    if (center) bounds.push([center.lat, center.lon]);
    // the view first: markers added to a map without one get their elements only later
    if (bounds.length === 1) map.setView(bounds[0], data.tiles ? 9 : 5);
    else map.fitBounds(bounds, { padding: [24, 24], maxZoom: data.tiles ? 12 : 6 });
    data.points.forEach(function (p) {
      var name = label(p, center);
      var icon = L.divIcon({ className: "site-marker" + (p.count ? " count-marker" : ""), iconSize: p.count ? [30, 30] : [16, 16],
                             html: p.count ? "<span aria-hidden=\"true\"></span>" : "" });
      var marker = L.marker([p.lat, p.lon], { icon: icon, keyboard: true, title: name, alt: name });
      marker.bindPopup(function () { return popup(p, center); });
      marker.addTo(map);
      var node = marker.getElement();
      if (node) {
        node.setAttribute("role", "button");
        node.setAttribute("aria-label", name);
        if (p.count) node.querySelector("span").textContent = String(p.count);
      }
    });
    if (center) {
      L.circleMarker([center.lat, center.lon], { radius: 5, color: "#a61b1b", fillOpacity: 1, interactive: false }).addTo(map);
    }
    container.setAttribute("data-ready", "1");
  }
  function start() {
    var maps = document.querySelectorAll("[data-map]");
    for (var i = 0; i < maps.length; i++) init(maps[i]);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
