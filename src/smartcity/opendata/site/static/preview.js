/* A resource's map and charts in the browser: Leaflet on the offline base map the dashboard
   serves (/api/v1/dashboard/geo/, nothing from another host) and uPlot, drawn like the
   dashboard's and the analytics pages'. The page is complete without this script: the places
   and the values are in tables beside the figures, which the script folds once it has drawn. */
(function () {
  "use strict";

  var HK_BOUNDS = [[22.14, 113.82], [22.57, 114.45]];
  var GEO = "/api/v1/dashboard/geo/";
  var COLOURS = ["#1f5fa8", "#b2182b", "#1a9850", "#8c510a"];

  function readJson(id) {
    var el = document.getElementById(id);
    try { return el ? JSON.parse(el.textContent) : null; } catch (e) { return null; }
  }
  var lang = document.documentElement.getAttribute("lang") || "en";
  var numbers = new Intl.NumberFormat(lang, { maximumFractionDigits: 2 });
  function plain(text) { return text.replace(/[\u202f\u2009]/g, " "); }
  function fold(section) {
    var details = section && section.querySelector("details.figure-table");
    if (details) details.open = false;
  }

  function drawMap(el, data) {
    if (!window.L || !data || !data.places.length) return;
    el.classList.add("is-drawn");
    var map = L.map(el, { keyboard: false, zoomControl: false, attributionControl: false, scrollWheelZoom: false, zoomSnap: 0.5 });
    map.fitBounds(HK_BOUNDS);
    fetch(GEO + "coastline.geojson").then(function (r) { return r.json(); }).then(function (gj) {
      L.geoJSON(gj, { interactive: false, style: { color: "#7a8a99", weight: 1, fillColor: "#f1efe6", fillOpacity: 1 } }).addTo(map).bringToBack();
    }).catch(function () {});
    fetch(GEO + "districts.geojson").then(function (r) { return r.json(); }).then(function (gj) {
      L.geoJSON(gj, { interactive: false, style: { color: "#9aa7b4", weight: 1, fill: false, dashArray: "3" } }).addTo(map);
    }).catch(function () {});
    var points = [];
    data.places.forEach(function (p) {
      if (p.geometry) {
        L.geoJSON(p.geometry, { interactive: false, style: { color: COLOURS[0], weight: 2, fillOpacity: 0.2 } }).addTo(map);
      }
      L.circleMarker([p.lat, p.lon], { radius: 6, color: "#222222", weight: 1, fillColor: COLOURS[0], fillOpacity: 0.9, interactive: false }).addTo(map);
      points.push([p.lat, p.lon]);
    });
    if (points.length) map.fitBounds(L.latLngBounds(points).pad(0.2), { maxZoom: 15 });
    el.setAttribute("data-map-ready", "true");
    fold(el.closest("section"));
  }

  function drawCharts(section, data) {
    if (!window.uPlot || !data || !data.times.length) return;
    var zone = data.timezone;
    var whole = data.times.every(function (t) { return t % 86400 === 0; }) && zone === "UTC";
    var stamps = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: whole ? undefined : "short", timeZone: zone });
    var days = new Intl.DateTimeFormat(lang, { year: "numeric", month: "short", day: "numeric", timeZone: zone });
    var hours = new Intl.DateTimeFormat(lang, { timeStyle: "short", timeZone: zone });
    var drawn = 0;
    Array.prototype.forEach.call(section.querySelectorAll("figure.data-chart"), function (fig) {
      var k = parseInt(fig.getAttribute("data-series"), 10);
      var s = data.series[k];
      var box = fig.querySelector(".chart");
      if (!s || !box) return;
      box.textContent = "";
      new uPlot({
        width: Math.max(280, box.clientWidth || fig.clientWidth || 600),
        height: 220,
        series: [
          { value: function (u, v) { return v == null ? "–" : plain(stamps.format(new Date(v * 1000))); } },
          { label: s.label, stroke: COLOURS[k % COLOURS.length], width: 2, spanGaps: false }
        ],
        tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), zone === "UTC" ? "Etc/UTC" : zone); },
        axes: [
          { values: function (u, splits, ai, space, incr) {
            return splits.map(function (x) { return plain(incr >= 86400 ? days.format(new Date(x * 1000)) : hours.format(new Date(x * 1000))); });
          } },
          { values: function (u, vals) { return vals.map(function (v) { return numbers.format(v); }); } }
        ]
      }, [data.times, s.values], box);
      fig.setAttribute("data-chart-ready", "true");
      drawn += 1;
    });
    if (drawn) fold(section);
  }

  function start() {
    var mapEl = document.getElementById("data-map");
    if (mapEl) drawMap(mapEl, readJson("map-data"));
    var chart = document.getElementById("chart");
    if (chart) drawCharts(chart, readJson("chart-data"));
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
