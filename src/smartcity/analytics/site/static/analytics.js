/* The analytics pages in the browser: the congestion map (Leaflet on the offline base map the
   dashboard serves) and the charts (uPlot, drawn like the dashboard's, in Hong Kong time). The
   pages are complete without this script: every figure is in a table beside it. */
(function () {
  "use strict";

  var HK_BOUNDS = [[22.14, 113.82], [22.57, 114.45]];
  var GEO = "/api/v1/dashboard/geo/";
  var COLOURS = ["#1f5fa8", "#b2182b", "#1a9850", "#8c510a", "#6a3d9a", "#444444"];

  function $all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }
  function readJson(el) { try { return JSON.parse(el.textContent); } catch (e) { return null; } }
  var lang = document.documentElement.getAttribute("lang") || "en";
  var hours = new Intl.DateTimeFormat(lang, { timeStyle: "short", timeZone: "Asia/Hong_Kong" });
  var days = new Intl.DateTimeFormat(lang, { month: "short", day: "numeric", timeZone: "Asia/Hong_Kong" });
  var numbers = new Intl.NumberFormat(lang, { maximumFractionDigits: 0 });
  function plain(text) { return text.replace(/[\u202f\u2009]/g, " "); }

  function drawChart(fig) {
    var box = fig.querySelector(".chart");
    var data = readJson(fig.querySelector(".chart-data"));
    if (!window.uPlot || !box || !data || !data.series.length) return;
    var times = {};
    data.series.forEach(function (s) { s.points.forEach(function (p) { times[Date.parse(p[0]) / 1000] = true; }); });
    var xs = Object.keys(times).map(Number).sort(function (a, b) { return a - b; });
    if (!xs.length) return;
    var index = {};
    xs.forEach(function (x, i) { index[x] = i; });
    var columns = [xs];
    var series = [{}];
    data.series.forEach(function (s, k) {
      var ys = xs.map(function () { return null; });
      s.points.forEach(function (p) { ys[index[Date.parse(p[0]) / 1000]] = p[1]; });
      columns.push(ys);
      series.push({ label: s.label, stroke: COLOURS[k % COLOURS.length], width: 2, spanGaps: false, dash: k === 1 && data.series.length === 2 ? [6, 4] : undefined });
    });
    box.textContent = "";
    new uPlot({
      width: Math.max(280, box.clientWidth || fig.clientWidth || 600),
      height: 260,
      series: series,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), "Asia/Hong_Kong"); },
      axes: [
        { values: function (u, splits, ai, space, incr) {
          return splits.map(function (s) { return plain(incr >= 86400 ? days.format(new Date(s * 1000)) : hours.format(new Date(s * 1000))); });
        } },
        { values: function (u, vals) { return vals.map(function (v) { return numbers.format(v); }); } }
      ]
    }, columns, box);
    fig.setAttribute("data-chart-ready", "true");
  }

  function drawMap(el) {
    if (!window.L) return;
    var map = L.map(el, { keyboard: false, zoomControl: false, attributionControl: false, scrollWheelZoom: false, zoomSnap: 0.5 });
    map.fitBounds(HK_BOUNDS);
    fetch(GEO + "coastline.geojson").then(function (r) { return r.json(); }).then(function (gj) {
      L.geoJSON(gj, { interactive: false, style: { color: "#7a8a99", weight: 1, fillColor: "#f1efe6", fillOpacity: 1 } }).addTo(map).bringToBack();
    }).catch(function () {});
    fetch(GEO + "districts.geojson").then(function (r) { return r.json(); }).then(function (gj) {
      L.geoJSON(gj, { interactive: false, style: { color: "#9aa7b4", weight: 1, fill: false, dashArray: "3" } }).addTo(map);
    }).catch(function () {});
    var points = [];
    $all("table.congestion tr[data-lat]").forEach(function (tr) {
      var ll = [parseFloat(tr.getAttribute("data-lat")), parseFloat(tr.getAttribute("data-lon"))];
      var colour = tr.getAttribute("data-colour");
      L.circleMarker(ll, { radius: 7, color: "#222222", weight: 1, fillColor: colour, fillOpacity: 0.9, interactive: false }).addTo(map);
      points.push(ll);
    });
    if (points.length) map.fitBounds(L.latLngBounds(points).pad(0.3), { maxZoom: 14 });
    document.documentElement.setAttribute("data-map-ready", "true");
  }

  function start() {
    var mapEl = document.getElementById("congestion-map");
    if (mapEl) drawMap(mapEl);
    $all("figure.trend").forEach(drawChart);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
