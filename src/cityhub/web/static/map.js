// cityhub one map (一张图): draws the layers of /api/v1/map with Leaflet (from npm, no tile server) and keeps the map and
// the indicator panel current by polling. Without Leaflet the page says so and the panel still refreshes.
// The same drawing makes the small map of one place (an order's point; the point an appeal is given on a phone): the
// point over the units' outlines, from /api/v1/places (placeMap below).
(function () {
  "use strict";

  function escapeHtml(value) {
    return String(value == null ? "" : value).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  // A count — a whole number given as a parameter that web/i18n.py's COUNT_PARAMS names — with the language's digit
  // grouping (3,006), as the pages write counts (i18n.count_text); the one map's configuration says the separator and
  // the names (cfg.counts).
  var countStyle = { group: "", names: [] };
  function grouped(key, value) {
    if (countStyle.names.indexOf(key) < 0 || typeof value !== "number" || value % 1 !== 0) { return value; }
    return String(value).replace(/\B(?=(\d{3})+(?!\d))/g, countStyle.group);
  }

  // {name} is the parameter; {name|one|other} the word agreeing with it ("1 order", "2 orders"), as web/i18n.py.
  function format(text, params) {
    return text.replace(/\{(\w+)(?:\|([^{}|]*)\|([^{}|]*))?\}/g, function (_, key, one, other) {
      if (one !== undefined) { return Number(params[key]) === 1 ? one : other; }
      return params[key] == null ? "" : grouped(key, params[key]);
    });
  }

  // The colours are the stylesheet's (app.css: --ch-layer-NAME and the marks' roles, in the page's theme); a layer
  // without its own is drawn in the colour of its registration.
  function palette(element, screen) {
    var style = window.getComputedStyle(element);
    var ink = {
      dark: !!screen || style.colorScheme === "dark",
      colour: function (role, fallback) { return style.getPropertyValue("--ch-" + role).trim() || fallback; },
      of: function (layer) { return ink.colour("layer-" + layer.name, layer.color); }
    };
    return ink;
  }
  // The district outline (the base layer) and a street's or community's boundary, drawn alike on both maps.
  function outlineStyle(ink, layer) {
    return {
      color: ink.of(layer),
      weight: ink.dark ? 2.5 : 2,
      fillColor: ink.colour("layer-base-fill", ink.of(layer)),
      fillOpacity: ink.dark ? 0.55 : 0.8
    };
  }
  function boundaryStyle(ink, layer, street) {
    return { color: ink.of(layer), weight: street ? 1.5 : 0.8, fillOpacity: 0.05, dashArray: street ? null : "3" };
  }

  // The zoom buttons in the page's language (cfg.zoom: map_pages.zoom_titles), in place of Leaflet's English ones,
  // which are also what a screen reader says of them.
  function addZoom(L, map, cfg) {
    var words = cfg.zoom || {};
    L.control.zoom({ zoomInTitle: words["in"] || "+", zoomOutTitle: words.out || "-" }).addTo(map);
  }

  // --- the small map of one place ----------------------------------------------------------------------------
  // data-place-map holds its configuration: the outlines' and the locating addresses (/api/v1/places), the layers'
  // colours, the point (lat, lng; null: none), and for picking (pick: true) the ids of the form's lat/lng fields,
  // the line saying where the point lies and the button clearing it; around (a citizen's appeal page: the ids of its
  // street and community), the view fitted to the district's outline around the point, not zoomed to a dot on grey
  // (no background tiles), those units' outlines stronger. Made to sit in a page read on a phone: the
  // page scrolls past it — the wheel and one finger scroll the page, not the map (two fingers zoom it, as do its
  // buttons) — and it is one tab stop, whose arrows pan it. A tap (or click) on a picking map puts the point there.
  // JSON from the server. A 401 calls signedOut when given (the one map says the session ended); any other failure
  // rejects with the server's message, or the status.
  function fetchJson(url, signedOut) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (response) {
      if (response.status === 401 && signedOut) { signedOut(); throw new Error("session"); }
      if (!response.ok) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          throw new Error(body.message || String(response.status));
        });
      }
      return response.json();
    });
  }

  function placeMap(element) {
    var cfg = JSON.parse(element.getAttribute("data-place-map"));
    var T = cfg.text;
    var L = window.L;
    var latInput = cfg.pick ? document.getElementById(cfg.pick.lat) : null;
    var lngInput = cfg.pick ? document.getElementById(cfg.pick.lng) : null;
    var where = cfg.pick ? document.getElementById(cfg.pick.status) : null;
    var clear = cfg.pick ? document.getElementById(cfg.pick.clear) : null;
    if (!L) { element.hidden = true; return; }
    var ink = palette(element, false);
    var touch = (window.matchMedia && window.matchMedia("(pointer: coarse)").matches) || L.Browser.mobile;
    var map = L.map(element, {
      attributionControl: false,
      zoomControl: false,
      preferCanvas: true,
      minZoom: 8,
      maxZoom: 18,
      zoomSnap: 0.5,
      scrollWheelZoom: false,
      dragging: !touch
    });
    addZoom(L, map, cfg);
    element.cityhubMap = map;  // for the browser tests and the console
    map.createPane("place").style.zIndex = 450;  // the point above the outlines, whichever is drawn first
    var outlines = L.layerGroup().addTo(map);
    var marker = null;
    var fitted = false;

    function pointOf() {
      if (cfg.pick) {
        var lat = parseFloat(latInput.value), lng = parseFloat(lngInput.value);
        // (a refused form keeps what was sent, 123 too: no point to draw)
        return Math.abs(lat) <= 90 && Math.abs(lng) <= 180 ? [lat, lng] : null;
      }
      return cfg.lat != null && cfg.lng != null ? [cfg.lat, cfg.lng] : null;
    }
    function draw(at) {
      if (marker) { map.removeLayer(marker); marker = null; }
      if (at) {
        marker = L.circleMarker(at, {
          pane: "place",
          radius: 8,
          color: ink.colour("map-halo", ink.of(cfg.layers.orders)),
          weight: 2.5,
          fillColor: ink.of(cfg.layers.orders),
          fillOpacity: 0.95,
          interactive: false
        }).addTo(map);
      }
      element.setAttribute("data-point", at ? at[0] + "," + at[1] : "");
      if (clear) { clear.hidden = !at; }
    }

    // Where the point lies among the units, said before the appeal is sent.
    var asked = 0;
    var outlined = null;  // whether any street or community has its outline (known once the outlines are read)
    function tellWhere(at) {
      if (!where) { return; }
      var mine = ++asked;
      if (!at) { where.textContent = ""; where.removeAttribute("data-placed"); return; }
      where.textContent = T.asking;
      var url = cfg.at + "?lat=" + encodeURIComponent(at[0]) + "&lng=" + encodeURIComponent(at[1]);
      // Said once the outlines are read too: before, a point placed by none could not be told from a district
      // without outlines.
      Promise.all([fetchJson(url), outlinesRead]).then(function (answers) {
        var place = answers[0];
        if (mine !== asked) { return; }
        var names = [place.street, place.community].filter(Boolean).map(function (u) { return u.name_shown || u.name; });
        // No street or community has its outline entered: no point can be placed by where it is (not "outside").
        where.textContent = place.placed ? format(T.placed, { place: names.join(" ") }) : (outlined === false ? T.unoutlined : T.nowhere);
        where.setAttribute("data-placed", place.placed ? "yes" : "no");
      }).catch(function () {
        if (mine === asked) { where.textContent = T.failed; where.setAttribute("data-placed", "unknown"); }
      });
    }

    function show(recentre) {
      var at = pointOf();
      draw(at);
      if (at && (recentre || !map.getBounds().contains(at))) { map.setView(at, Math.max(map.getZoom() || 0, 15)); }
      tellWhere(at);
    }

    var outlinesRead = fetchJson(cfg.boundaries).then(function (data) {
      var district = L.geoJSON({ type: "FeatureCollection", features: data.features.filter(function (f) {
        return f.properties.tier === "district";
      }) }, { interactive: false, style: outlineStyle(ink, cfg.layers.base) }).addTo(outlines);
      outlined = false;
      var around = cfg.around || [];
      var view = district.getBounds();  // cfg.around: the district's outline and the order's units around the point
      data.features.forEach(function (feature) {
        var tier = feature.properties.tier;
        if (tier === "district") { return; }
        outlined = true;
        var style = boundaryStyle(ink, cfg.layers.units, tier === "street");
        var own = around.indexOf(feature.properties.unit_id) >= 0;
        if (own) { style.weight += 1.5; style.fillOpacity = 0.15; }  // the order's street and community stand out
        var drawn = L.geoJSON(feature, { interactive: false, style: style }).addTo(outlines);
        if (own && drawn.getBounds().isValid()) { view.extend(drawn.getBounds()); }
      });
      var at = pointOf();
      if (cfg.around && at && view.isValid()) {
        // Without background tiles a point zoomed to is a dot on grey: shown where in the district it lies.
        map.fitBounds(view.extend(at), { padding: [8, 8], animate: false, maxZoom: 15 });
        element.setAttribute("data-fitted", "around");
      } else if (!at && !fitted && district.getBounds().isValid()) {
        map.fitBounds(district.getBounds(), { padding: [6, 6], animate: false });
        fitted = true;
      }
      element.setAttribute("data-loaded", String(data.features.length));
    }).catch(function () {
      element.setAttribute("data-loaded", "failed");  // (a point is still placed: outlined stays unknown)
    });

    var start = pointOf();
    if (start) { map.setView(start, 15); } else { map.setView(cfg.centre, 11); }
    if (cfg.pick) {
      map.on("click", function (event) {
        latInput.value = event.latlng.lat.toFixed(6);
        lngInput.value = event.latlng.lng.toFixed(6);
        var located = latInput.form && latInput.form.querySelector("[data-locate-status]");
        if (located) { located.textContent = ""; }  // the device's position said there is no longer the point
        // as 使用当前位置 does: the form's own listeners (the suggestions) and this map's hear the new point
        latInput.dispatchEvent(new Event("change", { bubbles: true }));
      });
      latInput.addEventListener("change", function () { show(false); });
      if (clear) {
        clear.addEventListener("click", function () {
          latInput.value = "";
          lngInput.value = "";
          latInput.dispatchEvent(new Event("change", { bubbles: true }));
        });
      }
    }
    show(false);
  }

  function oneMap(configElement) {
    var cfg = JSON.parse(configElement.textContent);
    var T = cfg.text;
    countStyle = cfg.counts || countStyle;
    var statusLine = document.getElementById("map-status");
    var sessionEnded = false;

    function say(message, bad) {
      if (!statusLine) { return; }
      statusLine.textContent = message;
      statusLine.classList.toggle("bad", !!bad);
    }
    // Times in the district's zone (cfg.timeZone), as the server writes them; the browser's own zone if it does not
    // know that one.
    function inZone(options) {
      try { return new Intl.DateTimeFormat(document.documentElement.lang || "zh-CN", Object.assign({ timeZone: cfg.timeZone }, options)); }
      catch (e) { return new Intl.DateTimeFormat(document.documentElement.lang || "zh-CN", options); }
    }
    var hms = inZone({ hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
    // The day as the pages write it in either language (2026-12-07: English's own read 12/7/2026), the time beside it.
    var ymd = (function () {
      var options = { year: "numeric", month: "2-digit", day: "2-digit" };
      try { return new Intl.DateTimeFormat("en-CA", Object.assign({ timeZone: cfg.timeZone }, options)); }
      catch (e) { return new Intl.DateTimeFormat("en-CA", options); }
    })();
    function clock(date) { return hms.format(date); }
    function sessionGone() {
      if (sessionEnded) { return; }
      sessionEnded = true;
      if (statusLine) {
        var next = encodeURIComponent(window.location.pathname + window.location.search);
        statusLine.innerHTML = escapeHtml(T.session_ended) + ' <a href="/login?next=' + next + '">↗</a>';
        statusLine.classList.add("bad");
      }
    }

    // --- the indicator panel: the server renders it, this fetches it again ------------------------------------
    function refreshPanel() {
      if (sessionEnded) { return Promise.resolve(); }
      var url = "/map/panel" + (cfg.screen ? "?screen=1" : "");
      return fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } }).then(function (response) {
        if (response.redirected || response.status === 401 || response.url.indexOf("/login") >= 0) {
          sessionGone();
          return null;
        }
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.text();
      }).then(function (html) {
        if (!html) { return; }
        var holder = document.createElement("div");
        holder.innerHTML = html.trim();
        var fresh = holder.querySelector("#map-panel");
        var old = document.getElementById("map-panel");
        if (fresh && old) { old.replaceWith(fresh); }
      }).catch(function () { say(T.load_failed, true); });
    }

    var clockElement = document.getElementById("screen-clock");
    if (clockElement) {
      var tick = function () { var now = new Date(); clockElement.textContent = ymd.format(now) + " " + clock(now); };
      tick();
      window.setInterval(tick, 1000);
    }

    // The page leaves the figures that take seconds (first request of the day) to this first fetch.
    var panel = document.getElementById("map-panel");
    if (panel && panel.getAttribute("data-partial")) { refreshPanel(); }

    // --- the orders as a list: what the map shows, reachable by keyboard and screen readers ------------------
    // A point on the canvas takes no focus; this list holds the same orders (or areas, far away) as links and
    // buttons, and follows the map: its view, the layer's toggle, the filters and every refresh.
    var LIST_LIMIT = 200;
    var listNote = document.getElementById("map-orders-note");
    var listElement = document.getElementById("map-orders-list");
    var listMore = document.getElementById("map-orders-more");
    var listAll = document.getElementById("map-orders-all");
    var listTitle = document.getElementById("map-orders-title");
    var listShown = null;

    // A cell named by the street most of its orders are in ("景泰街道等 2 个镇街一带"), else by its rank in the list.
    function cellPlace(p, i) {
      if (!p.street) { return format(T.cell_rank, { i: i + 1 }); }
      return format(p.streets > 1 ? T.cell_streets : T.cell_street, { street: p.street, k: p.streets });
    }

    function cellText(p, template, i, place) {
      return format(template, { i: i + 1, n: p.count, overdue: p.overdue, place: place || cellPlace(p, i) });
    }

    // The list's areas by their streets; areas of one street told apart by their rank in the list (the largest first):
    // "嘉禾街道一带 第 1 片", "嘉禾街道一带 第 2 片" — two items of one name were two buttons no reader could tell apart.
    function listedPlaces(features) {
      var names = features.map(cellPlace), seen = {}, counts = {};
      names.forEach(function (name) { counts[name] = (counts[name] || 0) + 1; });
      return names.map(function (name) {
        if (counts[name] < 2) { return name; }
        seen[name] = (seen[name] || 0) + 1;
        return format(T.cell_part, { place: name, k: seen[name] });
      });
    }

    function renderList(data) {  // data: the orders layer's answer; null when the layer is off
      if (!listElement) { return; }
      var note, items = [], more = "";
      if (!data) {
        note = T.list_off;
      } else if (data.mode === "cells") {
        var total = data.total != null ? data.total : data.features.reduce(function (n, f) { return n + f.properties.count; }, 0);
        note = total ? format(T.list_cells, { n: total, cells: data.features.length }) : T.list_none;
        var listed = data.features.slice(0, LIST_LIMIT);
        var places = listedPlaces(listed.map(function (feature) { return feature.properties; }));
        listed.forEach(function (feature, i) {
          var p = feature.properties, bbox = p.bbox.join(",");
          items.push('<li><button type="button" class="linkish" data-zoom="' + bbox + '" data-key="cell:' + bbox + '">' +
            escapeHtml(cellText(p, T.cell_item, i, places[i])) + "</button></li>");
        });
      } else {
        note = data.features.length ? format(T.list_points, { n: data.features.length }) : T.list_none;
        data.features.slice(0, LIST_LIMIT).forEach(function (feature) {
          var p = feature.properties;
          items.push('<li data-testid="map-order-item"><a href="' + escapeHtml(p.link) + '" data-key="' + escapeHtml(p.link) + '">' +
            escapeHtml(p.number) + " " + escapeHtml(p.title) + "</a> <small>" + escapeHtml(cfg.states[p.state] || p.state) +
            (p.masked ? " · " + escapeHtml(T.masked) : "") + "</small>" +
            (p.overdue ? ' <span class="badge sla-overdue">' + escapeHtml(T.overdue) + "</span>" : "") + "</li>");
        });
      }
      if (data && data.features.length > LIST_LIMIT) { more = format(T.list_more, { shown: LIST_LIMIT }); }
      var shown = note + "\u0000" + items.join("") + "\u0000" + more;
      if (shown === listShown) { return; }  // a refresh that changed nothing leaves the list (and the focus) alone
      listShown = shown;
      var active = document.activeElement;
      var focusedKey = active && listElement.contains(active) ? active.getAttribute("data-key") : null;
      listNote.textContent = note;
      listElement.innerHTML = items.join("");
      listMore.textContent = more;
      listMore.hidden = !more;
      if (focusedKey !== null) {
        // The focused order is still listed: focus stays on it; else on the list's heading, not lost to the page.
        var again = Array.prototype.filter.call(listElement.querySelectorAll("[data-key]"), function (el) {
          return el.getAttribute("data-key") === focusedKey;
        })[0];
        (again || listTitle).focus();
      }
    }

    // The order list with the map's filters (not its view): every open order, those without a point too.
    function updateListLink() {
      if (!listAll) { return; }
      var params = new URLSearchParams();
      params.set("state", "open");
      var category = document.getElementById("map-category");
      if (category && category.value) { params.set("category_id", category.value); }
      var since = document.getElementById("map-since");
      if (since && since.value !== "") {
        params.set("created_from", ymd.format(new Date(Date.now() - Number(since.value) * 86400000)));
      }
      listAll.setAttribute("href", "/orders?" + params.toString());
    }
    updateListLink();

    var mapElement = document.getElementById("map");
    if (!window.L || !mapElement) {
      if (listNote) { listNote.textContent = T.no_leaflet; }
      var notice = document.getElementById("map-unavailable");
      if (notice) { notice.hidden = false; }
      if (mapElement) { mapElement.hidden = true; }
      window.setInterval(refreshPanel, cfg.refresh * 1000);
      return;
    }

    // --- the map ----------------------------------------------------------------------------------------------
    var L = window.L;
    // The page's colours (palette), read again when the system's theme changes.
    var dark = false;
    var ink = null;
    function readTheme() {
      ink = palette(mapElement, cfg.screen);
      dark = ink.dark;
    }
    function colour(role, fallback) { return ink.colour(role, fallback); }
    function colourOf(layer) { return ink.of(layer); }
    readTheme();
    var map = L.map(mapElement, {
      attributionControl: false,
      zoomControl: false,
      preferCanvas: true,
      minZoom: 8,
      maxZoom: 18,
      zoomSnap: 0.5
    }).setView([23.29, 113.32], 11);
    addZoom(L, map, cfg);
    L.control.scale({ imperial: false }).addTo(map);
    window.cityhubMap = map;  // for the browser tests and the console

    var layersByName = {};
    var groups = {};
    var sequence = {};
    var fitted = false;
    cfg.layers.forEach(function (layer) {
      layersByName[layer.name] = layer;
      groups[layer.name] = L.layerGroup();
      sequence[layer.name] = 0;
    });

    function toggleOf(name) { return document.querySelector('input[data-layer="' + name + '"]'); }
    function enabled(name) { var box = toggleOf(name); return box ? box.checked : !!(layersByName[name] || {}).default_on; }

    function layerUrl(layer) {
      var params = new URLSearchParams();
      var bounds = map.getBounds();
      params.set("bbox", [bounds.getWest(), bounds.getSouth(), bounds.getEast(), bounds.getNorth()]
        .map(function (v) { return v.toFixed(5); }).join(","));
      params.set("zoom", String(Math.round(map.getZoom())));
      if (layer.name === "orders") {
        var category = document.getElementById("map-category");
        if (category && category.value) { params.set("category_id", category.value); }
        var since = document.getElementById("map-since");
        if (since && since.value !== "") {
          var start = new Date();
          start.setHours(0, 0, 0, 0);
          start.setDate(start.getDate() - Number(since.value));
          params.set("since", start.toISOString());
        }
      }
      return layer.url + "?" + params.toString();
    }

    // Layers whose answer does not depend on the view are fetched without it (the base, the units, the hotspots).
    var VIEW_FREE = { base: true, units: true, hotspots: true };

    function load(name) {
      var layer = layersByName[name];
      if (!layer || !enabled(name) || sessionEnded) { return Promise.resolve(); }
      var mine = ++sequence[name];
      var url = VIEW_FREE[name] ? layer.url : layerUrl(layer);
      return fetchJson(url, sessionGone).then(function (data) {
        if (mine !== sequence[name]) { return; }  // a newer request for this layer was sent meanwhile
        var group = groups[name];
        group.clearLayers();
        (RENDERERS[name] || renderGeneric)(data, group, layer);
        if (!map.hasLayer(group)) { group.addTo(map); }
        // What is drawn, for the browser tests and for whoever inspects the page.
        mapElement.setAttribute("data-loaded-" + name, String(data.features.length));
        if (data.mode) { mapElement.setAttribute("data-mode-" + name, data.mode); }
        if (name === "orders") { renderList(data); }
      });
    }

    var settled = 0;
    function loadAll(names) {
      return Promise.all(names.map(function (name) {
        return load(name).catch(function (error) { if (!sessionEnded) { throw error; } });
      })).then(function () {
        if (!sessionEnded) { say(format(T.updated, { at: clock(new Date()) }), false); }
      }).catch(function (error) {
        if (!sessionEnded) { say(T.load_failed + " " + (error && error.message ? error.message : ""), true); }
      }).then(function () {
        // Every layer asked for has answered (drawn or failed): for the browser tests, as data-loaded-* per layer.
        mapElement.setAttribute("data-settled", String(++settled));
      });
    }

    // --- renderers ----------------------------------------------------------------------------------------------
    function popupLink(href, text) { return href ? '<a href="' + escapeHtml(href) + '">' + escapeHtml(text) + "</a>" : ""; }

    function renderBase(data, group, layer) {
      var shape = L.geoJSON(data, { interactive: false, style: outlineStyle(ink, layer) }).addTo(group);
      if (!fitted && !cfg.scoped && shape.getBounds().isValid()) {
        map.fitBounds(shape.getBounds(), { padding: [10, 10], animate: false });
        fitted = true;
      }
    }

    var communities = L.layerGroup();
    function renderUnits(data, group, layer) {
      communities.clearLayers();
      var points = [];
      data.features.forEach(function (feature) {
        var p = feature.properties;
        var street = p.tier === "street";
        var shown = p.name_shown || p.name;  // the reader's language's name (an English one where set)
        var popup = "<strong>" + escapeHtml(shown) + "</strong> <small>" + escapeHtml(street ? T.street : T.community) +
          "</small><br>" + escapeHtml(T.open) + " " + p.open + " · " + escapeHtml(T.overdue) + " " + p.overdue +
          " · " + escapeHtml(T.today) + " " + p.today + "<br>" + popupLink(p.link, T.view_orders);
        var shape = null;
        if (feature.geometry && feature.geometry.type === "Point") {
          var at = [feature.geometry.coordinates[1], feature.geometry.coordinates[0]];
          points.push(at);
          shape = L.circleMarker(at, {
            radius: street ? 6 : 3.5,
            color: p.overdue > 0 ? colour("layer-overdue", colourOf(layer)) : colourOf(layer),
            weight: street ? 2 : 1,
            fillColor: colour("layer-units-fill", colourOf(layer)),
            fillOpacity: street ? 0.9 : 0.6
          });
          if (street) {
            shape.bindTooltip(escapeHtml(shown.replace(/(街道|镇| Subdistrict| Town)$/, "")), {
              permanent: true, direction: "right", className: "unit-label", offset: [6, 0]
            });
          }
        } else if (feature.geometry) {
          shape = L.geoJSON(feature, { style: boundaryStyle(ink, layer, street) });
          var bounds = shape.getBounds();
          if (bounds.isValid()) { points.push(bounds.getCenter()); }
        }
        if (!shape) { return; }
        shape.bindPopup(popup);
        (street ? group : communities).addLayer(shape);
      });
      group.addLayer(communities);
      showCommunities();
      if (!fitted && cfg.scoped && points.length) {
        map.fitBounds(L.latLngBounds(points).pad(0.3), { maxZoom: 14, animate: false });
        fitted = true;
      }
    }
    function showCommunities() {
      var group = groups.units;
      if (!group) { return; }
      var wanted = map.getZoom() >= 12.5 || cfg.scoped;
      if (wanted && !group.hasLayer(communities)) { group.addLayer(communities); }
      if (!wanted && group.hasLayer(communities)) { group.removeLayer(communities); }
    }

    function renderOrders(data, group, layer) {
      if (data.mode === "cells") {
        var largest = data.features.reduce(function (m, f) { return Math.max(m, f.properties.count); }, 1);
        data.features.forEach(function (feature) {
          var p = feature.properties;
          var size = Math.round(26 + 30 * Math.sqrt(p.count / largest));
          var share = p.overdue / p.count;
          var icon = L.divIcon({
            className: "cell-icon" + (share >= 0.2 ? " hot" : share > 0 ? " warm" : ""),
            html: "<span>" + p.count + "</span>",
            iconSize: [size, size]
          });
          var at = [feature.geometry.coordinates[1], feature.geometry.coordinates[0]];
          var marker = L.marker(at, { icon: icon, keyboard: false });
          var bbox = p.bbox;
          marker.bindPopup(escapeHtml(cellText(p, T.orders_in_cell, 0)) +
            '<br><button type="button" class="linkish" data-zoom="' + bbox.join(",") + '">' + escapeHtml(T.zoom_in) + "</button>");
          group.addLayer(marker);
        });
        return;
      }
      data.features.forEach(function (feature) {
        var p = feature.properties;
        var at = [feature.geometry.coordinates[1], feature.geometry.coordinates[0]];
        var marker = L.circleMarker(at, {
          radius: 6,
          color: colour("map-halo", colourOf(layer)),
          weight: 1.5,
          fillColor: p.overdue ? colour("layer-overdue", colourOf(layer)) : colourOf(layer),
          fillOpacity: 0.95
        });
        marker.bindPopup(
          '<div class="order-popup" data-testid="order-popup">' + popupLink(p.link, p.number) +
          (p.overdue ? ' <span class="badge sla-overdue">' + escapeHtml(T.overdue) + "</span>" : "") +
          "<br>" + escapeHtml(p.title) + "<br><small>" + escapeHtml(cfg.states[p.state] || p.state) +
          (p.masked ? " · " + escapeHtml(T.masked) : "") + "</small></div>"
        );
        group.addLayer(marker);
      });
    }

    function renderHotspots(data, group, layer) {
      data.features.forEach(function (feature) {
        var p = feature.properties;
        var at = [feature.geometry.coordinates[1], feature.geometry.coordinates[0]];
        var topic = p.source === "hot_topic";
        var heat = Math.max(1, Number(p.heat) || 1);
        var kind = topic ? T.hot_topic : p.kind === "rising" ? T.finding_rising : T.finding_recurring;
        var marker = L.circleMarker(at, {
          radius: Math.min(30, 9 + 4 * Math.log2(1 + heat)),
          color: topic ? colour("layer-topics", colourOf(layer)) : colourOf(layer),
          // On the dark map a warm fill over the navy reads as brown: a topic is a bright ring, barely filled, there.
          weight: topic && dark ? 3 : 2,
          fillColor: topic ? colour("layer-topics-fill", colourOf(layer)) : colourOf(layer),
          fillOpacity: dark ? (topic ? 0.06 : 0.45) : 0.3,
          className: "hotspot"
        });
        marker.bindPopup(
          '<div class="hot-popup"><strong>' + escapeHtml(kind) + "</strong> " + escapeHtml(p.title || "") +
          "<br>" + escapeHtml(p.summary || "") + "<br><small>" + escapeHtml(T.reports) + " " + p.count +
          (p.expected != null ? " · " + escapeHtml(T.expected) + " " + p.expected : "") +
          // a topic's 热度 is named so; a finding's figure says itself what it is (为预期的 12.2 倍)
          " · " + (topic ? escapeHtml(T.heat) + " " : "") + escapeHtml(p.heat_text || String(p.heat)) + "</small></div>"
        );
        group.addLayer(marker);
      });
    }

    // A layer another package registers (sensors, alarms …) is drawn as points in its colour with its title.
    function renderGeneric(data, group, layer) {
      var ink = colourOf(layer);
      L.geoJSON(data, {
        pointToLayer: function (feature, at) {
          return L.circleMarker(at, { radius: 7, color: ink, fillColor: ink, fillOpacity: 0.7, weight: 1 });
        },
        style: { color: ink, weight: 2 },
        onEachFeature: function (feature, shape) {
          var p = feature.properties || {};
          var linkText = p.link_kind === "order" ? T.view_order : p.link_kind === "monitoring" ? T.view_monitoring : T.view_orders;
          shape.bindPopup("<strong>" + escapeHtml(p.title || p.name || layer.title) + "</strong>" +
            (p.summary ? "<br>" + escapeHtml(p.summary) : "") + (p.link ? "<br>" + popupLink(p.link, linkText) : ""));
        }
      }).addTo(group);
    }

    // The sensors: as any plug-in layer's points, but a silent one (离线, status "silent") as a hollow grey dashed ring —
    // its last values no longer tell how the place is — with a badge in its popup.
    function renderSensors(data, group, layer) {
      var ink = colourOf(layer);
      var grey = colour("layer-silent", ink);  // (the theme defines it: app.css)
      data.features.forEach(function (feature) {
        var p = feature.properties || {};
        var at = [feature.geometry.coordinates[1], feature.geometry.coordinates[0]];
        var silent = p.status === "silent";
        var marker = L.circleMarker(at, silent
          ? { radius: 7, color: grey, weight: 2.5, dashArray: "3 3", fillColor: grey, fillOpacity: 0.12, className: "sensor-silent-mark" }
          : { radius: 7, color: ink, fillColor: ink, fillOpacity: 0.7, weight: 1 });
        marker.bindPopup("<strong>" + escapeHtml(p.title || layer.title) + "</strong>" +
          (silent ? ' <span class="badge sensor-silent">' + escapeHtml(T.silent) + "</span>" : "") +
          (p.summary ? "<br>" + escapeHtml(p.summary) : "") + (p.link ? "<br>" + popupLink(p.link, T.view_monitoring) : ""));
        group.addLayer(marker);
      });
    }

    var RENDERERS = { base: renderBase, units: renderUnits, orders: renderOrders, hotspots: renderHotspots, sensors: renderSensors };

    // --- events -------------------------------------------------------------------------------------------------
    document.addEventListener("change", function (event) {
      var box = event.target.closest && event.target.closest("input[data-layer]");
      if (box) {
        var name = box.getAttribute("data-layer");
        if (box.checked) { loadAll([name]); } else if (groups[name]) { map.removeLayer(groups[name]); }
        if (name === "orders" && !box.checked) { sequence.orders++; renderList(null); }  // an answer on its way is dropped
        return;
      }
      if (event.target.id === "map-category" || event.target.id === "map-since") {
        updateListLink();
        loadAll(["orders"]);
      }
    });
    function zoomTo(event) {
      var button = event.target.closest && event.target.closest("[data-zoom]");
      if (!button) { return; }
      var b = button.getAttribute("data-zoom").split(",").map(Number);
      map.closePopup();
      map.fitBounds([[b[1], b[0]], [b[3], b[2]]]);
    }
    mapElement.addEventListener("click", zoomTo);
    if (listElement) { listElement.addEventListener("click", zoomTo); }
    if (!enabled("orders")) { renderList(null); }
    var moveTimer = null;
    map.on("moveend", function () {
      showCommunities();
      window.clearTimeout(moveTimer);
      moveTimer = window.setTimeout(function () {
        var moving = cfg.layers.filter(function (l) { return !VIEW_FREE[l.name]; }).map(function (l) { return l.name; });
        loadAll(moving);
      }, 250);
    });

    // The layers that set the view first (the base; a scoped user's units), then the rest in the view they set: the
    // orders fetched with the view before the fit were listed, then listed again a moment later for the fitted view —
    // and a keyboard already in the list lost its place. Then every cfg.refresh seconds all but the base.
    var fitting = cfg.scoped ? ["base", "units"] : ["base"];
    loadAll(fitting.filter(function (name) { return layersByName[name]; })).then(function () {
      window.clearTimeout(moveTimer);  // the fit's own reload: the rest are loaded here, in the fitted view
      return loadAll(cfg.layers.filter(function (l) { return fitting.indexOf(l.name) < 0; }).map(function (l) { return l.name; }));
    });
    // The system's theme changed (the page follows it when the user chose 跟随系统): the layers in its colours.
    if (window.matchMedia) {
      var scheme = window.matchMedia("(prefers-color-scheme: dark)");
      var redraw = function () {
        readTheme();
        loadAll(cfg.layers.map(function (l) { return l.name; }));
      };
      if (scheme.addEventListener) { scheme.addEventListener("change", redraw); } else if (scheme.addListener) { scheme.addListener(redraw); }
    }
    window.setInterval(function () {
      if (sessionEnded) { return; }
      refreshPanel();
      loadAll(cfg.layers.filter(function (l) { return l.name !== "base"; }).map(function (l) { return l.name; }));
    }, cfg.refresh * 1000);
  }

  var oneMapConfig = document.getElementById("map-config");
  if (oneMapConfig) { oneMap(oneMapConfig); }
  Array.prototype.forEach.call(document.querySelectorAll("[data-place-map]"), placeMap);
})();
