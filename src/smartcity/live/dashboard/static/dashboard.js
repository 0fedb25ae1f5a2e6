/* The real-time city dashboard in the browser: map (Leaflet), charts (uPlot) and live updates
   (Server-Sent Events). The page is complete without this script; it only adds to it.
   No inline styles or scripts: the CSP forbids them (colours are drawn on a canvas). */
(function () {
  "use strict";

  var API = "/api/v1/dashboard";
  var HK_BOUNDS = [[22.14, 113.82], [22.57, 114.45]];

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }
  function narrow() { return window.matchMedia("(max-width: 40rem)").matches; }
  function readJson(el) { try { return JSON.parse(el.textContent); } catch (e) { return null; } }

  // -- formatting (the same rules as views.py) ------------------------------------------------
  // `lang` is the page's Babel locale as a BCP 47 tag ("en-HK", "zh-Hant-HK", "zh-Hans-CN"):
  // dates read exactly as the server writes them (i18n.Formatter.moment), in Hong Kong time.
  function Formatter(lang, labels) {
    var numbers = {};
    var HK = "Asia/Hong_Kong";
    var times = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short", timeZone: HK });
    var clock = new Intl.DateTimeFormat(lang, { timeStyle: "medium", timeZone: HK });
    var hours = new Intl.DateTimeFormat(lang, { timeStyle: "short", timeZone: HK });
    var days = new Intl.DateTimeFormat(lang, { month: "short", day: "numeric", timeZone: HK });
    // CLDR's narrow and thin spaces as plain ones, as the server writes them.
    function plain(text) { return text.replace(/[\u202f\u2009]/g, " "); }
    this.hour = function (ms) { return plain(hours.format(new Date(ms))); };
    this.day = function (ms) { return plain(days.format(new Date(ms))); };
    this.number = function (kind, value) {
      if (value === null || value === undefined) return "–";
      if (kind === "air" && value > 10) return "10+";
      var d = labels && labels.kinds[kind] ? labels.kinds[kind].decimals : 1;
      if (!numbers[d]) numbers[d] = new Intl.NumberFormat(lang, { maximumFractionDigits: d });
      return numbers[d].format(value);
    };
    this.change = function (kind, value) {
      if (value === null || value === undefined) return "–";
      var text = this.number(kind, Math.abs(value));
      var d = labels && labels.kinds[kind] ? labels.kinds[kind].decimals : 1;
      var r = Math.round(value * Math.pow(10, d)) / Math.pow(10, d);
      return (r > 0 ? "+" : r < 0 ? "−" : "±") + text;
    };
    this.time = function (iso) {
      if (!iso) return "–";
      var t = new Date(iso);
      return isNaN(t) ? "–" : plain(times.format(t));
    };
    this.clock = function (date) { return plain(clock.format(date)); };
  }

  function format(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (_, k) { return values[k]; }).replace(/%%/g, "%");
  }

  // -- charts ---------------------------------------------------------------------------------
  function drawChart(container, points, label, fmt, kind, hours) {
    if (!window.uPlot || !container) return null;
    container.textContent = "";
    if (!points || !points.length) return null;
    var end = Date.now() / 1000;
    var start = end - (hours || 24) * 3600;
    var xs = [], ys = [];
    (points || []).forEach(function (p) { xs.push(Date.parse(p[0]) / 1000); ys.push(p[1]); });
    var width = Math.max(240, container.clientWidth || 300);
    var opts = {
      width: width, height: 160,
      legend: { show: false },
      cursor: { show: true },
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), "Asia/Hong_Kong"); },
      scales: { x: { time: true, range: [start, end] } },
      axes: [{
        stroke: "#4a5460",
        // Tick labels in the page's locale and Hong Kong time (uPlot's own are month-first).
        values: function (u, splits, ai, space, incr) {
          return splits.map(function (s) { return incr >= 86400 ? fmt.day(s * 1000) : fmt.hour(s * 1000); });
        }
      }, {
        stroke: "#4a5460", size: 56,
        values: function (u, vals) { return vals.map(function (v) { return fmt.number(kind, v); }); }
      }],
      series: [{}, { label: label, stroke: "#0b3d5c", width: 2, fill: "rgba(11,61,92,0.08)", points: { show: xs.length < 30 } }]
    };
    return new uPlot(opts, [xs, ys], container);
  }

  // Charts start from the hub's history (rendered into the page) and are re-read every
  // minute, so the current hour's figure moves and a new hour appears without a reload.
  var TREND_REFRESH_MS = 60000;
  function setupTrends(fmt, labels, prefix) {
    $all("figure.trend[data-kind]").forEach(function (fig) {
      var kind = fig.getAttribute("data-kind");
      var data = {};
      $all("details.series-table", fig).forEach(function (d) {
        data[d.getAttribute("data-window")] = readJson($(".series-data", d)) || [];
      });
      var chart = $(".chart", fig);
      var label = labels.kinds[kind] ? labels.kinds[kind].tile : kind;
      var shown = "24h";
      function draw() { drawChart(chart, data[shown], label, fmt, kind, shown === "7d" ? 168 : 24); }
      draw();
      var sw = $(".window-switch", fig);
      sw.hidden = false;
      $all("button", sw).forEach(function (b) {
        b.addEventListener("click", function () {
          $all("button", sw).forEach(function (o) { o.setAttribute("aria-pressed", String(o === b)); });
          shown = b.getAttribute("data-window");
          draw();
        });
      });
      setInterval(function () {
        if (document.hidden) return;
        fetch(API + "/series?kind=" + kind + "&window=" + shown + "&lang=" + prefix)
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (s) { if (s) { data[shown] = s.points; draw(); fig.setAttribute("data-points", String(s.points.length)); } })
          .catch(function () {});
      }, TREND_REFRESH_MS);
      fig.setAttribute("data-points", String((data["24h"] || []).length));
    });
  }

  // -- the map --------------------------------------------------------------------------------
  function MapView(config, fmt, onSelect) {
    var labels = config.labels;
    var el = document.getElementById("map");
    el.hidden = false;  // before Leaflet measures it
    var map = L.map(el, { preferCanvas: true, zoomSnap: 0.5, attributionControl: true });
    map.fitBounds(HK_BOUNDS);
    if (config.tileUrl) {
      L.tileLayer(config.tileUrl, { attribution: config.tileAttribution || "", maxZoom: 18 }).addTo(map);
    }
    fetch(API + "/geo/coastline.geojson").then(function (r) { return r.json(); }).then(function (gj) {
      L.geoJSON(gj, { interactive: false, style: { color: "#7a8a99", weight: 1, fillColor: "#f1efe6", fillOpacity: config.tileUrl ? 0 : 1 } }).addTo(map).bringToBack();
    });
    fetch(API + "/geo/districts.geojson").then(function (r) { return r.json(); }).then(function (gj) {
      L.geoJSON(gj, { interactive: false, style: { color: "#9aa7b4", weight: 1, fill: false, dashArray: "3" } }).addTo(map);
    });
    var groups = {}, markers = {}, overlays = {};
    labels.order.forEach(function (k) {
      groups[k] = L.featureGroup().addTo(map);
      overlays[labels.kinds[k].label] = groups[k];
    });
    // On a phone the open layer list would cover half the map: folded into its button there.
    L.control.layers(null, overlays, { collapsed: narrow() }).addTo(map);

    function style(p) {
      return { radius: 7, color: "#1b1f24", weight: 1, fillColor: p.colour || "#666", fillOpacity: 0.9 };
    }
    function tooltip(p) {
      var name = typeof p.name === "string" ? p.name : (p.id || "");
      return name + ": " + fmt.number(p.kind, p.value) + " " + (labels.kinds[p.kind] ? labels.kinds[p.kind].unit : "");
    }
    this.upsert = function (p, geometry) {
      var m = markers[p.id];
      if (!m) {
        if (!geometry && !p.point) return;
        if (geometry && geometry.type !== "Point") {
          m = L.geoJSON(geometry, { style: function () { return { color: p.colour, weight: 2, fillColor: p.colour, fillOpacity: 0.35 }; } });
          m.isShape = true;
        } else {
          var c = geometry ? geometry.coordinates : p.point;
          m = L.circleMarker([c[1], c[0]], style(p));
        }
        m.on("click", function () { onSelect(p.id); });
        markers[p.id] = m;
        if (groups[p.kind]) groups[p.kind].addLayer(m);
      } else if (m.isShape) {
        m.setStyle({ color: p.colour, fillColor: p.colour });
      } else {
        m.setStyle({ fillColor: p.colour || "#666" });
      }
      m.unbindTooltip();
      m.bindTooltip(tooltip(p));
    };
    this.remove = function (id) {
      var m = markers[id];
      if (m) { Object.keys(groups).forEach(function (k) { groups[k].removeLayer(m); }); delete markers[id]; }
    };
    this.focus = function (id) {
      var m = markers[id];
      if (!m) return;
      var target = m.getLatLng ? m.getLatLng() : m.getBounds().getCenter();
      map.panTo(target);
    };
    this.has = function (id) { return !!markers[id]; };
    // The colour a feature is drawn in (canvas markers have no DOM: for tests and debugging).
    this.colour = function (id) {
      var m = markers[id];
      if (!m) return null;
      if (m.isShape) { var c = null; m.eachLayer(function (l) { c = l.options.fillColor; }); return c; }
      return m.options.fillColor;
    };
    this.count = function () { return Object.keys(markers).length; };
  }

  // -- the entity panel -----------------------------------------------------------------------
  function Panel(config, fmt) {
    var panel = $("#entity-panel");
    var labels = config.labels;
    var opener = null;
    var close = $(".panel-close", panel);
    function hide() {
      panel.hidden = true;
      if (opener && document.contains(opener)) opener.focus();
    }
    close.addEventListener("click", hide);
    panel.addEventListener("keydown", function (e) { if (e.key === "Escape") hide(); });
    this.open = function (id, from) {
      opener = from || null;
      fetch(API + "/entities/" + encodeURIComponent(id) + "?lang=" + config.prefix)
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(function (e) {
          var title = $("#entity-panel-title", panel);
          title.textContent = e.name;
          var body = $(".panel-body", panel);
          body.textContent = "";
          var table = document.createElement("table");
          var tbody = document.createElement("tbody");
          e.attributes.slice(0, 12).forEach(function (a) {
            var tr = document.createElement("tr");
            var th = document.createElement("th"); th.scope = "row"; th.textContent = a.name;
            var td = document.createElement("td");
            td.textContent = (typeof a.value === "object" ? JSON.stringify(a.value) : String(a.value)) + (a.unitCode ? " " + a.unitCode : "");
            tr.appendChild(th); tr.appendChild(td); tbody.appendChild(tr);
          });
          table.appendChild(tbody);
          body.appendChild(table);
          if (e.kind && e.history.length) {
            var h = document.createElement("p"); h.className = "small"; h.textContent = labels.history;
            body.appendChild(h);
            var chart = document.createElement("div"); chart.className = "chart"; chart.setAttribute("aria-hidden", "true");
            body.appendChild(chart);
            panel.hidden = false;
            drawChart(chart, e.history, e.name, fmt, e.kind);
          }
          var link = document.createElement("a"); link.href = e.page; link.textContent = labels.openPage;
          var p = document.createElement("p"); p.appendChild(link); body.appendChild(p);
          panel.hidden = false;
          title.focus();
        })
        .catch(function () { if (from && from.href) window.location.href = from.href; });
    };
  }

  // -- live updates ---------------------------------------------------------------------------
  function Live(config, fmt, mapView) {
    var labels = config.labels;
    var status = $("#live-status");
    var announce = $("#live-announce");
    var rows = {};
    $all("tr[data-id]").forEach(function (tr) { rows[tr.getAttribute("data-id")] = tr; });
    var alertsList = $("#alerts");
    var active = null, newSince = 0, lastSummary = 0, lastActive = null;
    var SUMMARY_EVERY_MS = 30000;

    function setStatus(text) { status.textContent = text; }

    function applyTile(t) {
      var li = $('.tile[data-kind="' + t.kind + '"]');
      if (!li) return;
      var data = $("data.value", li);
      data.value = t.value === null ? "" : String(t.value);
      data.textContent = fmt.number(t.kind, t.value);
      var band = $(".tile-band", li);
      if (t.band) {
        band.hidden = false;
        $(".band", band).textContent = labels.bands[t.band] || t.band;
        var sw = $(".swatch", band);
        if (sw && t.colour) sw.className = "swatch c-" + t.colour.replace("#", "");
      }
      var time = $(".tile-time time", li);
      time.setAttribute("datetime", t.observedAt || "");
      time.textContent = fmt.time(t.observedAt);
      $(".change-1h", li).textContent = fmt.change(t.kind, t.change1h);
      $(".change-24h", li).textContent = fmt.change(t.kind, t.change24h);
      if (t.simulated !== undefined) {
        $(".tile-simulated", li).hidden = !t.simulated;
        if (t.simulated) $("#simulated-note").hidden = false;
      }
    }

    function applyEntity(e) {
      mapView && mapView.upsert(e, null);
      var tr = rows[e.id];
      if (tr) {
        $(".value", tr).textContent = fmt.number(e.kind, e.value);
        var band = $(".band", tr);
        band.textContent = "";
        var sw = document.createElement("span"); sw.className = "swatch c-" + (e.colour || "#666666").replace("#", ""); sw.setAttribute("aria-hidden", "true");
        band.appendChild(sw);
        band.appendChild(document.createTextNode(e.band ? (labels.bands[e.band] || e.band) : ""));
        var time = $("time", tr);
        time.setAttribute("datetime", e.observedAt || "");
        time.textContent = fmt.time(e.observedAt);
      }
    }

    function alertItem(a) {
      var li = document.createElement("li");
      li.setAttribute("data-key", a.rule + " " + a.id);
      var strong = document.createElement("strong"); strong.textContent = labels.kinds[a.kind].label;
      var link = document.createElement("a");
      link.href = "/" + config.prefix + "/dashboard/entities/" + encodeURIComponent(a.id).replace(/%3A/g, ":");
      link.textContent = typeof a.name === "string" ? a.name : (a.name && (a.name[config.lang] || a.name.en)) || a.id.split(":").pop();
      var threshold = fmt.number(a.kind, a.threshold);
      li.appendChild(strong);
      li.appendChild(document.createTextNode(": "));
      li.appendChild(link);
      li.appendChild(document.createTextNode(" — " + format(labels.rules[a.rule], { value: fmt.number(a.kind, a.value), threshold: threshold }) + " "));
      var when = document.createElement("span"); when.className = "small muted";
      var time = document.createElement("time"); time.setAttribute("datetime", a.observedAt || ""); time.textContent = fmt.time(a.observedAt);
      when.appendChild(document.createTextNode("(")); when.appendChild(time); when.appendChild(document.createTextNode(")"));
      li.appendChild(when);
      return li;
    }

    function applyAlerts(al) {
      al.cleared.forEach(function (c) {
        var li = $('li[data-key="' + CSS.escape(c.rule + " " + c.id) + '"]', alertsList);
        if (li) li.remove();
      });
      al.raised.forEach(function (a) {
        var old = $('li[data-key="' + CSS.escape(a.rule + " " + a.id) + '"]', alertsList);
        if (old) old.remove();
        alertsList.insertBefore(alertItem(a), alertsList.firstChild);
      });
      (al.updated || []).forEach(function (a) {  // still active, a newer reading: in place
        var old = $('li[data-key="' + CSS.escape(a.rule + " " + a.id) + '"]', alertsList);
        if (old) old.replaceWith(alertItem(a));
        else alertsList.insertBefore(alertItem(a), alertsList.firstChild);
      });
      newSince += al.raised.length;
      active = al.active;
      $("#alerts-count").textContent = format(labels.alertsActive, { num: fmt.number("carparks", al.active) });
    }

    // Polite, and not every tick: a summary at most every 30 s, only when alerts changed.
    function summarise() {
      var now = Date.now();
      if (active === null || now - lastSummary < SUMMARY_EVERY_MS) return;
      if (newSince === 0 && active === lastActive) return;
      announce.textContent = active === 0 && newSince === 0 ? labels.noAlerts
        : format(labels.alertsSummary, { active: fmt.number("carparks", active), "new": fmt.number("carparks", newSince) });
      lastSummary = now; newSince = 0; lastActive = active;
    }
    setInterval(summarise, 5000);

    function resync() {
      fetch(API + "/state?lang=" + config.prefix).then(function (r) { return r.json(); }).then(function (s) {
        s.tiles.forEach(applyTile);
        alertsList.textContent = "";
        s.alerts.forEach(function (a) { alertsList.appendChild(alertItem(a)); });
        active = s.alerts.length;
      });
      if (mapView) loadLayers(mapView, config, fmt);
    }

    var source = new EventSource(API + "/events");
    source.addEventListener("hello", function () { setStatus(labels.connected); });
    source.addEventListener("update", function (ev) {
      var u = JSON.parse(ev.data);
      (u.entities || []).forEach(applyEntity);
      (u.removed || []).forEach(function (id) { mapView && mapView.remove(id); });
      (u.tiles || []).forEach(applyTile);
      if (u.alerts) applyAlerts(u.alerts);
      setStatus(labels.connected + " · " + format(labels.lastUpdate, { time: fmt.clock(new Date()) }));
      document.documentElement.setAttribute("data-live-seq", String(u.seq));
    });
    source.addEventListener("resync", resync);
    source.addEventListener("error", function () { setStatus(labels.reconnecting); });
    window.smartcityDashboard = { source: source, map: mapView };
  }

  function loadLayers(mapView, config, fmt) {
    return fetch(API + "/layers?lang=" + config.prefix).then(function (r) { return r.json(); }).then(function (fc) {
      fc.features.forEach(function (f) { mapView.upsert(f.properties, f.geometry); });
    });
  }

  // -- start ----------------------------------------------------------------------------------
  function start() {
    var history = $(".history-data");
    if (history) {  // an entity page: its chart only
      var h = readJson(history);
      var fmtE = new Formatter(h.lang, null);
      drawChart($(".entity-history .chart"), h.points, h.label, fmtE, null);
      return;
    }
    var cfgEl = $("#dashboard-config");
    if (!cfgEl) return;
    var config = readJson(cfgEl);
    var fmt = new Formatter(config.lang, config.labels);
    setupTrends(fmt, config.labels, config.prefix);
    // Phones: the long layer tables start folded (the page stays short); each opens on a tap.
    if (narrow()) $all("details.layer-table[open]").forEach(function (d) { d.open = false; });
    var panel = new Panel(config, fmt);
    var mapView = null;
    if (window.L) {
      mapView = new MapView(config, fmt, function (id) { panel.open(id, null); });
      loadLayers(mapView, config, fmt).then(function () { document.documentElement.setAttribute("data-map-ready", "true"); });
    }
    $all("a.feature-link").forEach(function (a) {
      a.addEventListener("click", function (e) {
        if (e.ctrlKey || e.metaKey || e.shiftKey) return;
        e.preventDefault();
        var id = a.getAttribute("data-id");
        if (mapView) mapView.focus(id);
        panel.open(id, a);
      });
    });
    if (window.EventSource) new Live(config, fmt, mapView);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
