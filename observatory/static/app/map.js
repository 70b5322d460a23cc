// The planners' map: a MapLibre choropleth of the indicators over a basemap drawn from our own layers,
// with the state (indicator, period, municipality, comparison, classification, overlays, language and
// view) kept in the URL. Everything shown comes from the API; values are set as text, never as HTML.
"use strict";

const GEOGRAPHY = "municipios_2007";
const PALETTES = {
  2: ["#a1dab4", "#253494"], 3: ["#edf8b1", "#7fcdbb", "#2c7fb8"], 4: ["#ffffcc", "#a1dab4", "#41b6c4", "#225ea8"],
  5: ["#ffffcc", "#a1dab4", "#41b6c4", "#2c7fb8", "#253494"],
  6: ["#ffffcc", "#c7e9b4", "#7fcdbb", "#41b6c4", "#2c7fb8", "#253494"],
  7: ["#ffffcc", "#c7e9b4", "#7fcdbb", "#41b6c4", "#1d91c0", "#225ea8", "#0c2c84"],
};  // ColorBrewer YlGnBu
const NO_DATA = "#bdbdbd";
const WITHHELD = "#6f6f6f";  // a value that exists but is not published: not the grey of no data
const SERIES_COLOURS = ["#2c7fb8", "#d35400", "#238b45", "#6a51a3"];
const TMS = "WebMercatorQuad";
const PERMITS = "permits";
const CELLS = "incident_cells";  // the public form of the incidents: counts per hexagon and year
const CELL_STOPS = [[5, "#fee5d9"], [10, "#fcae91"], [20, "#fb6a4a"], [40, "#de2d26"], [80, "#a50f15"]];
const MAX_COMPARED = 4;
const RADIUS_STOPS = [[1, 4], [10, 18], [40, 30]];  // √count -> circle radius (px): area grows with count
const radiusFor = (count) => {
  const root = Math.sqrt(count);
  const upper = RADIUS_STOPS.findIndex(([stop]) => stop >= root);
  if (upper <= 0) return upper === 0 ? RADIUS_STOPS[0][1] : RADIUS_STOPS[RADIUS_STOPS.length - 1][1];
  const [[x0, y0], [x1, y1]] = [RADIUS_STOPS[upper - 1], RADIUS_STOPS[upper]];
  return y0 + ((root - x0) / (x1 - x0)) * (y1 - y0);
};

const params = new URLSearchParams(location.search);
const state = {
  lang: params.get("lang") === "en" ? "en" : "es",
  indicator: params.get("indicator"),
  period: params.has("period") ? Number(params.get("period")) : null,
  municipality: params.get("municipality"),
  compare: (params.get("compare") || "").split(",").filter(Boolean).slice(0, MAX_COMPARED),
  method: ["quantiles", "natural_breaks", "equal_interval"].includes(params.get("method")) ? params.get("method") : "quantiles",
  k: Math.min(7, Math.max(2, Number(params.get("k")) || 5)),
  overlays: (params.get("overlays") || "").split(",").filter(Boolean),
  kind: params.get("kind") || "",
  at: (params.get("at") || "").split("/").map(Number),
};
const T = window.I18N[state.lang];
const data = { themes: [], sheets: {}, context: null, items: null, classes: null, sheet: null, withheld: [] };
const charts = {};
const phone = matchMedia("(max-width: 700px)").matches;
let map;
let playing = null;
let placeMarkers = [];
let countMarkers = [];
let openPopup = null;  // the feature popup open on the map, for Escape

const $ = (id) => document.getElementById(id);
const number = (value, digits) => {
  if (value === null || value === undefined || Number.isNaN(value)) return T.noData;
  const fraction = digits ?? (Math.abs(value) >= 100 || Number.isInteger(value) ? 0 : 2);
  return new Intl.NumberFormat(T.locale, { maximumFractionDigits: fraction, minimumFractionDigits: 0 }).format(value);
};
const dateText = (text) => {
  const parsed = new Date(text);
  const dayOnly = /^\d{4}-\d{2}-\d{2}$/.test(text);  // a calendar day: no time zone may shift it
  return Number.isNaN(parsed.getTime()) ? String(text)
    : new Intl.DateTimeFormat(T.locale, { dateStyle: "long", timeZone: dayOnly ? "UTC" : "America/El_Salvador" }).format(parsed);
};
const title = (sheet) => sheet.title[state.lang];
const json = async (url) => {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.json();
};
const element = (tag, text, attributes = {}) => {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  // A style through the CSSOM: a style attribute is inline style, which the page's
  // Content-Security-Policy refuses (observatory/api/security_headers.py).
  Object.entries(attributes).forEach(([key, value]) => {
    if (key === "style") node.style.cssText = value;
    else node.setAttribute(key, value);
  });
  return node;
};
const placeName = (code) => (data.context.places.find((place) => place.code === code) || { name: code }).name;

function writeUrl() {
  const query = new URLSearchParams();
  if (state.lang !== "es") query.set("lang", state.lang);
  if (state.indicator) query.set("indicator", state.indicator);
  if (state.period) query.set("period", state.period);
  if (state.municipality) query.set("municipality", state.municipality);
  if (state.compare.length) query.set("compare", state.compare.join(","));
  if (state.method !== "quantiles") query.set("method", state.method);
  if (state.k !== 5) query.set("k", state.k);
  if (state.overlays.length) query.set("overlays", state.overlays.join(","));
  if (state.kind) query.set("kind", state.kind);
  if (map) {
    const centre = map.getCenter();
    query.set("at", `${map.getZoom().toFixed(2)}/${centre.lat.toFixed(5)}/${centre.lng.toFixed(5)}`);
  }
  history.replaceState(null, "", `${location.pathname}?${query}`);
}

function translatePage() {
  document.querySelectorAll("[data-i18n]").forEach((node) => { node.textContent = T[node.dataset.i18n]; });
  document.querySelectorAll("[data-i18n-label]").forEach((node) => node.setAttribute("aria-label", T[node.dataset.i18nLabel]));
  $("search").placeholder = T.searchPlaceholder;
  const other = state.lang === "es" ? "en" : "es";
  const link = $("lang-switch");
  link.textContent = T.otherLanguage;
  link.setAttribute("lang", other);
  link.setAttribute("aria-label", T.otherLanguageLabel);
  link.addEventListener("click", (event) => {
    event.preventDefault();
    state.lang = other;
    writeUrl();
    location.reload();
  });
  $("drawer-toggle").addEventListener("click", () => toggleDrawer());
  document.addEventListener("keydown", (event) => {  // Escape closes a popup, else the drawer (the sheet handles its own)
    if (event.key !== "Escape" || $("sheet").open) return;
    if (openPopup?.isOpen()) {
      openPopup.remove();
    } else if (document.body.classList.contains("drawer-open")) {
      toggleDrawer(false);
      $("drawer-toggle").focus();
    }
  });
}

function toggleDrawer(open) {
  const isOpen = open ?? !document.body.classList.contains("drawer-open");
  document.body.classList.toggle("drawer-open", isOpen);
  $("drawer-toggle").setAttribute("aria-expanded", String(isOpen));
  $("drawer-toggle").textContent = isOpen ? T.closeMenu : T.menu;
}

// ---- navigation: themes, indicators, search ----
function fillNavigation() {
  const themeSelect = $("theme");
  data.themes.filter((theme) => theme.indicators.length).forEach((theme) => {
    themeSelect.append(new Option(theme.title[state.lang], theme.id));
  });
  themeSelect.addEventListener("change", () => {
    const theme = data.themes.find((item) => item.id === themeSelect.value);
    selectIndicator(theme.indicators[0]);
  });
  $("indicator").addEventListener("change", () => selectIndicator($("indicator").value));
  $("search").addEventListener("input", showSearch);
}

function fillIndicatorSelect() {
  const sheet = data.sheets[state.indicator];
  $("theme").value = sheet.theme;
  const select = $("indicator");
  select.replaceChildren();
  data.themes.find((theme) => theme.id === sheet.theme).indicators.forEach((id) => {
    select.append(new Option(title(data.sheets[id]), id));
  });
  select.value = state.indicator;
  $("indicator-unit").textContent = `${sheet.unit} · ${T.directions[sheet.direction]}`;
}

function showSearch() {
  const words = $("search").value.trim().toLocaleLowerCase(T.locale);
  const list = $("search-results");
  list.replaceChildren();
  if (!words) return;
  const fold = (text) => text.normalize("NFD").replace(/\p{Diacritic}/gu, "").toLocaleLowerCase(T.locale);
  const matches = Object.values(data.sheets).filter((sheet) =>
    fold(`${title(sheet)} ${sheet.theme_title[state.lang]}`).includes(fold(words))).slice(0, 12);
  if (!matches.length) list.append(element("li", T.noResults));
  matches.forEach((sheet) => {
    const button = element("button", `${title(sheet)} (${sheet.theme_title[state.lang]})`, { type: "button" });
    button.addEventListener("click", () => {
      $("search").value = "";
      list.replaceChildren();
      selectIndicator(sheet.id);
    });
    const item = element("li");
    item.append(button);
    list.append(item);
  });
}

async function selectIndicator(id, sheet = null) {
  state.indicator = id;
  data.sheet = sheet ? await sheet : await json(`/indicators/${encodeURIComponent(id)}`);
  if (state.period === null && data.sheet.latest_period) state.period = data.sheet.latest_period;
  fillIndicatorSelect();
  await refresh();
}

// ---- time ----
function fillTime() {
  const periods = data.context.periods;
  const slider = $("period-slider");
  slider.max = String(Math.max(periods.length - 1, 0));
  slider.addEventListener("input", () => {
    state.period = periods[Number(slider.value)];
    refresh();
  });
  $("play").addEventListener("click", () => (playing ? stopPlaying() : startPlaying()));
}

let plays = 0;

function startPlaying() {  // each period is drawn in full and shown 1.5 s before the next is asked for
  const periods = data.context.periods;
  const mine = ++plays;
  $("play").textContent = T.pause;
  const step = async () => {
    const next = (periods.indexOf(state.period) + 1) % periods.length;
    state.period = periods[next];
    await refresh();
    if (!playing || mine !== plays) return;  // paused (or restarted) while this period was drawn
    if (next === periods.length - 1) stopPlaying();
    else playing = setTimeout(step, 1500);
  };
  playing = setTimeout(step, 1500);
}

function stopPlaying() {
  clearTimeout(playing);
  playing = null;
  $("play").textContent = T.play;
}

function showPeriod() {
  const periods = data.context.periods;
  $("period-slider").value = String(Math.max(periods.indexOf(state.period), 0));
  $("period-label").textContent = state.period ?? "";
  $("period-slider").setAttribute("aria-valuetext", String(state.period ?? ""));
  const note = $("period-note");
  note.replaceChildren();
  const own = data.sheet.periods;
  if (!own.length) {
    note.textContent = T.noPeriods;
  } else if (!own.includes(state.period)) {
    note.append(T.lacksPeriod(state.period, own.join(", ")), " ");
    const go = element("button", T.goLatest(data.sheet.latest_period), { type: "button", id: "go-latest" });
    go.addEventListener("click", () => { state.period = data.sheet.latest_period; refresh(); });
    note.append(go);
  }
}

// ---- classification ----
function fillClassification() {
  Object.entries(T.methods).forEach(([id, label]) => $("method").append(new Option(label, id)));
  for (let k = 2; k <= 7; k += 1) $("k").append(new Option(String(k), String(k)));
  $("method").value = state.method;
  $("k").value = String(state.k);
  $("method").addEventListener("change", () => { state.method = $("method").value; refresh(); });
  $("k").addEventListener("change", () => { state.k = Number($("k").value); refresh(); });
}

// ---- the map ----
function tileUrl(name, query = "") {
  return `${location.origin}/collections/${name}/tiles/${TMS}/{z}/{y}/{x}${query}`;
}

function permitQuery() {
  const query = new URLSearchParams();
  if (state.period) query.set("datetime", `${state.period}-01-01/${state.period}-12-31`);
  if (state.kind) query.set("kind", state.kind);
  const text = query.toString();
  return text ? `?${text}` : "";
}

function cellQuery() {  // the hexagons of the year shown, never every year stacked
  return state.period ? `?year=${state.period}` : "";
}

function overlayQuery(name) {
  if (name === PERMITS) return permitQuery();
  return name === CELLS ? cellQuery() : "";
}

function buildMap() {
  const [zoom, lat, lon] = state.at.length === 3 && state.at.every(Number.isFinite) ? state.at : [10.3, 13.70, -89.19];
  map = new maplibregl.Map({
    container: "map",
    center: [lon, lat],
    zoom,
    attributionControl: false,
    style: { version: 8, sources: {}, layers: [{ id: "background", type: "background", paint: { "background-color": "#eef1f4" } }] },
  });
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-left");
  map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "top-right");
  map.addControl(new maplibregl.AttributionControl({
    compact: phone, customAttribution: `${T.attribution}: ${data.context.attribution.join(" · ")}`,
  }), "bottom-right");
  if (phone) {  // compact attribution starts open: fold it, so it covers nothing until asked for
    document.querySelector(".maplibregl-ctrl-attrib").classList.remove("maplibregl-compact-show");
  }
  map.on("moveend", writeUrl);
  map.on("click", onClick);
  map.on("idle", drawCountLabels);
  return new Promise((resolve) => map.on("load", resolve));
}

function addLayers(outlines) {
  map.addSource("municipalities", { type: "geojson", data: outlines, promoteId: "code" });
  map.addLayer({ id: "choropleth", type: "fill", source: "municipalities", paint: { "fill-color": NO_DATA, "fill-opacity": 0.85 } });
  const streets = data.context.overlays.find((layer) => layer.name === "streets");
  if (streets) {  // basemap, not an overlay: always drawn at street zooms
    map.addSource("streets", { type: "vector", tiles: [tileUrl("streets")], minzoom: Math.max(12, streets.min_zoom), maxzoom: streets.max_zoom });
    map.addLayer({ id: "streets", type: "line", source: "streets", "source-layer": "streets", minzoom: 12,
      paint: { "line-color": "#ffffff", "line-width": ["interpolate", ["linear"], ["zoom"], 12, 0.5, 17, 4] } });
  }
  const drawOrder = ["MultiPolygon", "MultiLineString", "Point"];  // points on top, areas beneath
  data.context.overlays.filter((layer) => layer.name !== "streets")
    .sort((a, b) => drawOrder.indexOf(a.geometry) - drawOrder.indexOf(b.geometry)).forEach(addOverlay);
  map.addLayer({ id: "outlines", type: "line", source: "municipalities",
    paint: { "line-color": "#333", "line-width": ["case", ["boolean", ["feature-state", "selected"], false], 3, 1] } });
  placeMarkers = data.context.places.map((place) => {
    const label = element("div", place.name, { class: "place-label", "aria-hidden": "true", "data-code": place.code });
    return new maplibregl.Marker({ element: label }).setLngLat(place.label).addTo(map);
  });
  map.on("moveend", declutterPlaces);
  declutterPlaces();
}

function declutterPlaces() {  // HTML labels have no collision test of their own: hide one that would overlap another
  const shown = [];
  const chosen = (marker) => Number(marker.getElement().dataset.code === state.municipality);
  [...placeMarkers].sort((a, b) => chosen(b) - chosen(a)).forEach((marker) => {  // the chosen one's label first
    const label = marker.getElement();
    label.style.visibility = "";
    const box = label.getBoundingClientRect();
    const clash = shown.some((other) => box.left < other.right && other.left < box.right && box.top < other.bottom && other.top < box.bottom);
    if (clash) label.style.visibility = "hidden";
    else shown.push(box);
  });
}

function addOverlay(layer) {
  const name = layer.name;
  map.addSource(name, { type: "vector", tiles: [tileUrl(name, overlayQuery(name))], minzoom: layer.min_zoom, maxzoom: layer.max_zoom });
  const visibility = state.overlays.includes(name) ? "visible" : "none";
  const base = { id: name, source: name, "source-layer": name, layout: { visibility } };
  if (layer.geometry === "Point") {
    const count = ["coalesce", ["get", "count"], 1];  // the aggregated-tile contract: no count is one record
    map.addLayer({ ...base, type: "circle", paint: {
      "circle-color": layer.fill_color, "circle-stroke-color": layer.color, "circle-stroke-width": 1,
      "circle-radius": ["interpolate", ["linear"], ["sqrt", count], ...RADIUS_STOPS.flat()] } });
  } else if (layer.geometry === "MultiLineString") {
    map.addLayer({ ...base, type: "line", paint: { "line-color": layer.color, "line-width": 2 } });
  } else if (name === CELLS) {
    map.addLayer({ ...base, type: "fill", paint: {
      "fill-color": ["interpolate", ["linear"], ["get", "incidents"], ...CELL_STOPS.flat()],
      "fill-opacity": 0.9, "fill-outline-color": layer.color } });  // opaque enough to match the legend over the choropleth
  } else {
    const colour = name === "zoning"
      ? ["match", ["get", "land_use_class"], ...data.context.zoning_classes.flatMap((c) => [c.id, c.colour]), layer.fill_color]
      : layer.fill_color;
    map.addLayer({ ...base, type: "fill", paint: { "fill-color": colour, "fill-opacity": 0.45, "fill-outline-color": layer.color } });
  }
}

function fillOverlayControls() {
  const list = $("overlay-list");
  data.context.overlays.filter((layer) => layer.name !== "streets").forEach((layer) => {
    const id = `overlay-${layer.name}`;
    const box = element("input", null, { type: "checkbox", id, value: layer.name });
    box.checked = state.overlays.includes(layer.name);
    box.addEventListener("change", () => {
      state.overlays = box.checked ? [...state.overlays, layer.name] : state.overlays.filter((name) => name !== layer.name);
      map.setLayoutProperty(layer.name, "visibility", box.checked ? "visible" : "none");
      writeUrl();
      drawLegend();
      drawCountLabels();
    });
    const label = element("label", null, { for: id });
    label.append(box, " ", layer.title[state.lang]);
    list.append(label);
  });
  const kind = $("kind");
  kind.append(new Option(T.allKinds, ""));
  Object.entries(T.kinds).forEach(([id, label]) => kind.append(new Option(label, id)));
  kind.value = state.kind;
  kind.addEventListener("change", () => { state.kind = kind.value; refreshPermits(); writeUrl(); });
}

function refreshPermits() {  // the overlays that follow the year (and the permits' kind)
  [PERMITS, CELLS].forEach((name) => {
    const source = map.getSource(name);
    if (source) source.setTiles([tileUrl(name, overlayQuery(name))]);
  });
  drawLegend();
}

function drawCountLabels() {
  countMarkers.forEach((marker) => marker.remove());
  countMarkers = [];
  if (!map.getLayer(PERMITS) || !state.overlays.includes(PERMITS)) return;
  const groups = map.queryRenderedFeatures({ layers: [PERMITS] }).filter((f) => (f.properties.count ?? 1) > 1);
  countMarkers = groups.slice(0, 300).map((feature) =>
    new maplibregl.Marker({ element: element("div", number(feature.properties.count), { class: "count-label", "aria-hidden": "true" }) })
      .setLngLat(feature.geometry.coordinates).addTo(map));
}

function onClick(event) {
  const overlays = data.context.overlays.map((layer) => layer.name)
    .filter((name) => map.getLayer(name) && state.overlays.includes(name));
  const hit = overlays.length ? map.queryRenderedFeatures(event.point, { layers: overlays })[0] : null;
  if (hit) {
    openPopup = new maplibregl.Popup({ maxWidth: "300px" }).setLngLat(event.lngLat).setDOMContent(popupTable(hit)).addTo(map);
    return;
  }
  const place = map.queryRenderedFeatures(event.point, { layers: ["choropleth"] })[0];
  if (place) selectMunicipality(place.properties.code, { openDrawer: true });
}

function fieldValue(key, value) {
  if (key === "municipality_code") return placeName(value);
  if (key === "kind") return T.kinds[value] || value;
  if (key === "use_class") return T.uses[value] || value;
  if (key === "status") return T.statuses[value] || value;
  if (key === "land_use_class") {
    const found = data.context.zoning_classes.find((c) => c.id === value);
    return found ? found.title[state.lang] : value;
  }
  if (["submitted", "resolved", "date"].includes(key)) return dateText(value);
  if (key === "year") return String(value);
  if (typeof value === "number") return number(value);
  return String(value);
}

const HIDDEN_FIELDS = new Set(["cell_id", "h3_cell"]);  // identifiers that mean nothing to a reader

function popupTable(feature) {
  const layer = data.context.overlays.find((item) => item.name === feature.layer.id);
  const wrap = element("div", null, { class: "feature-popup" });
  wrap.append(element("strong", layer ? layer.title[state.lang] : feature.layer.id));
  const table = element("table", null, { class: "popup-table" });
  Object.entries(feature.properties).forEach(([key, value]) => {
    if (value === null || value === "" || (key === "count" && value === 1) || HIDDEN_FIELDS.has(key)) return;
    const row = table.insertRow();
    row.append(element("th", T.fields[key] || key.replaceAll("_", " ")));
    row.insertCell().textContent = fieldValue(key, value);
  });
  wrap.append(table);
  return wrap;
}

// ---- choropleth, legend, downloads ----
let refreshes = 0;

async function refresh() {
  const mine = ++refreshes;  // a newer change (the slider dragged on) supersedes this one
  showPeriod();
  writeUrl();
  const query = new URLSearchParams({ indicator_id: state.indicator, geography: GEOGRAPHY, period: state.period, limit: 1000 });
  const has = data.sheet.periods.includes(state.period);
  const classQuery = new URLSearchParams({ period: state.period, geography: GEOGRAPHY, method: state.method, k: state.k });
  const [items, classes] = has ? await Promise.all([
    json(`/collections/indicators/items?${query}`),
    json(`/indicators/${encodeURIComponent(state.indicator)}/classes?${classQuery}`),
  ]) : [{ type: "FeatureCollection", features: [] }, { classes: [], assigned: {}, integer: false }];
  if (mine !== refreshes) return;
  data.items = items;
  data.classes = classes;
  const palette = PALETTES[Math.max(2, classes.classes.length)];
  const colours = classes.classes.length === 1 ? [palette[palette.length - 1]] : palette;
  data.withheld = items.features.filter((f) => f.properties.flag === "suppressed").map((f) => f.properties.municipality_code);
  const pairs = [...Object.entries(classes.assigned).flatMap(([code, index]) => [code, colours[index]]),
    ...data.withheld.flatMap((code) => [code, WITHHELD])];
  map.setPaintProperty("choropleth", "fill-color", pairs.length ? ["match", ["get", "code"], ...pairs, NO_DATA] : NO_DATA);
  data.colours = colours;
  refreshPermits();
  drawDownloads();
  drawLegend();
  drawRanking();
  await Promise.all([drawProfile(), drawComparison()]);
  document.body.dataset.drawn = `${state.indicator}:${state.period}:${state.method}:${state.k}`;
}

function drawLegend() {
  const legend = $("legend");
  legend.replaceChildren();
  if (!data.sheet || !data.classes) return;
  legend.append(element("h3", `${title(data.sheet)} · ${state.period}`));
  legend.append(element("div", data.sheet.unit, { class: "muted" }));
  const list = element("ul", null, { id: "legend-classes" });
  const digits = data.classes.integer ? 0 : undefined;
  data.classes.classes.forEach((c, index) => {
    const item = element("li", null, { class: "legend-class" });
    const range = c.min === c.max ? number(c.min, digits) : `${number(c.min, digits)} – ${number(c.max, digits)}`;
    item.append(element("span", null, { class: "swatch", style: `background:${data.colours[index]}` }), range);
    list.append(item);
  });
  if (data.withheld.length) {
    const withheld = element("li", null, { class: "legend-withheld" });
    withheld.append(element("span", null, { class: "swatch", style: `background:${WITHHELD}` }), T.legendWithheld);
    list.append(withheld);
  }
  const none = element("li", null, { class: "legend-nodata" });
  none.append(element("span", null, { class: "swatch", style: `background:${NO_DATA}` }), T.legendNoData);
  list.append(none);
  legend.append(list);
  data.context.overlays.filter((layer) => state.overlays.includes(layer.name)).forEach((layer) => {
    const section = element("div", null, { class: "legend-overlay", "data-layer": layer.name });
    section.append(element("h3", layer.title[state.lang]));
    const entries = element("ul");
    if (layer.name === "zoning") {
      data.context.zoning_classes.forEach((c) => {
        const item = element("li", null, { class: "legend-zone" });
        item.append(element("span", null, { class: "swatch", style: `background:${c.colour}` }), c.title[state.lang]);
        entries.append(item);
      });
    } else if (layer.geometry === "Point") {
      if (layer.name === PERMITS) {
        entries.append(element("li", `${T.permitsPeriod(state.period)}${state.kind ? ` · ${T.kinds[state.kind]}` : ""}`));
      }
      [1, 10, 100, 1000].forEach((n) => {
        const size = 2 * radiusFor(n);
        const item = element("li");
        item.append(element("span", null, { class: "dot", style: `width:${size}px;height:${size}px;background:${layer.fill_color}` }), number(n));
        entries.append(item);
      });
      entries.append(element("li", T.countLegend, { class: "muted" }));
    } else if (layer.name === CELLS) {
      entries.append(element("li", T.cellsPeriod(state.period)));
      CELL_STOPS.forEach(([n, colour]) => {
        const item = element("li");
        item.append(element("span", null, { class: "swatch", style: `background:${colour}` }), `${number(n)}${n === CELL_STOPS.at(-1)[0] ? "+" : ""}`);
        entries.append(item);
      });
      entries.append(element("li", T.cellsNote, { class: "muted" }));
    } else {
      const item = element("li");
      item.append(element("span", null, { class: "swatch", style: `background:${layer.fill_color}` }), layer.title[state.lang]);
      entries.append(item);
    }
    section.append(entries);
    legend.append(section);
  });
}

function shownRows() {
  return data.items.features.map((feature) => ({
    indicator_id: feature.properties.indicator_id, municipality_code: feature.properties.municipality_code,
    municipality_name: feature.properties.municipality_name, geography: feature.properties.geography,
    period: feature.properties.period, value: feature.properties.value, unit: feature.properties.unit,
    n: feature.properties.n, flag: feature.properties.flag,
  }));
}

function drawDownloads() {
  const rows = shownRows();
  const columns = ["indicator_id", "municipality_code", "municipality_name", "geography", "period", "value", "unit", "n", "flag"];
  const cell = (value) => {
    let text = value === null || value === undefined ? "" : String(value);
    // Text a spreadsheet would run as a formula gets a leading ' (numbers stay numbers): the rule
    // of observatory/spreadsheet.py, which every CSV the server writes follows.
    if (typeof value === "string" && /^[=+\-@\t\r]/.test(value)) text = `'${text}`;
    return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
  };
  const csv = [columns.join(","), ...rows.map((row) => columns.map((column) => cell(row[column])).join(","))].join("\n") + "\n";
  const base = `${state.indicator}_${state.period}`;
  for (const [id, body, type, extension] of [
    ["download-csv", csv, "text/csv", "csv"],
    ["download-geojson", JSON.stringify({ type: "FeatureCollection", features: data.items.features }), "application/geo+json", "geojson"],
  ]) {
    const link = $(id);
    if (link.href.startsWith("blob:")) URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(new Blob([body], { type }));
    link.download = `${base}.${extension}`;
  }
}

// ---- charts: ranking, profile series, comparison ----
function chart(id, config) {
  if (charts[id]) charts[id].destroy();
  charts[id] = new Chart($(id), { ...config, options: { animation: false, responsive: true, maintainAspectRatio: false, locale: T.locale, ...config.options } });
  return charts[id];
}

function drawRanking() {
  const sheet = data.sheets[state.indicator];
  const rows = shownRows().filter((row) => row.value !== null && row.municipality_code !== "AMSS");
  rows.sort((a, b) => (sheet.direction === "lower_is_better" ? a.value - b.value : b.value - a.value));
  $("ranking-caption").textContent = T.rankingCaption(title(sheet), state.period);
  const canvas = $("ranking-chart");
  canvas.setAttribute("aria-label", `${T.rankingHeading}: ${rows.map((row) => `${row.municipality_name} ${number(row.value)}`).join("; ")}`);
  chart("ranking-chart", {
    type: "bar",
    data: { labels: rows.map((row) => row.municipality_name), datasets: [{ label: sheet.unit, data: rows.map((row) => row.value),
      backgroundColor: rows.map((row) => (row.municipality_code === state.municipality ? "#d35400" : "#2c7fb8")) }] },
    options: { indexAxis: "y", plugins: { legend: { display: false } } },
  });
}

async function profileOf(code) {
  const sheet = data.sheets[state.indicator];
  const query = new URLSearchParams({ theme: sheet.theme, period: state.period, geography: GEOGRAPHY });
  return json(`/map/profile/${encodeURIComponent(code)}?${query}`);
}

function seriesChart(id, datasets) {
  const periods = [...new Set(datasets.flatMap((set) => set.series.map((point) => point.period)))].sort();
  return chart(id, {
    type: "line",
    data: { labels: periods, datasets: datasets.map((set, i) => ({
      label: set.label, borderColor: SERIES_COLOURS[i], backgroundColor: SERIES_COLOURS[i],
      pointRadius: set.series.map((point) => (point.period === state.period ? 4 : 1.5)),
      data: periods.map((p) => (set.series.find((point) => point.period === p) || { value: null }).value) })) },
    options: { plugins: { legend: { display: datasets.length > 1 } }, scales: { x: { ticks: { maxTicksLimit: 6 } } } },
  });
}

/** The years of a value's inputs when any differs from the period shown ("2007, 2024"): a 2024
 *  value resting on 2007 people says so. Null when every input is of the period itself. */
function mixedVintages(inputPeriods, period) {
  const years = [...new Set(Object.values(inputPeriods || {}))].sort();
  return years.some((year) => year !== period) ? years.join(", ") : null;
}

/** Each input with every period it has among the values shown ("population: 2007\nstreets: 2024"). */
function vintagesText(values) {
  const seen = {};
  values.forEach((row) => Object.entries(JSON.parse(row.input_periods || "{}")).forEach(([name, year]) => {
    (seen[name] = seen[name] || new Set()).add(year);
  }));
  return Object.keys(seen).sort().map((name) => `${name}: ${[...seen[name]].sort().join(", ")}`).join("\n");
}

async function drawProfile() {
  const body = $("profile-body");
  Object.keys(charts).filter((id) => id.startsWith("series-")).forEach((id) => { charts[id].destroy(); delete charts[id]; });
  body.replaceChildren();
  if (map.getSource("municipalities")) {
    data.context.places.forEach((place) => map.setFeatureState({ source: "municipalities", id: place.code }, { selected: place.code === state.municipality }));
  }
  $("municipality").value = state.municipality || "";
  declutterPlaces();
  if (!state.municipality) return;
  const profile = await profileOf(state.municipality);
  const sheet = data.sheets[state.indicator];
  body.append(element("h3", T.profileOf(profile.name, sheet.theme_title[state.lang], state.period), { id: "profile-title" }));
  const table = element("table", null, { id: "profile-table" });
  const head = table.createTHead().insertRow();
  [T.indicator, T.value, T.rank, T.series].forEach((text) => head.append(element("th", text, { scope: "col" })));
  const rows = table.createTBody();
  profile.indicators.forEach((entry) => {
    const row = rows.insertRow();
    row.dataset.indicator = entry.id;
    row.append(element("th", entry.title[state.lang], { scope: "row" }));
    const flag = entry.flag ? ` (${T.flags[entry.flag] || entry.flag})` : "";
    const shown = entry.value === null && entry.flag === "suppressed"
      ? T.flags.suppressed : `${number(entry.value)} ${entry.value === null ? "" : entry.unit}${flag}`.trim();
    const cell = element("td", shown, { class: "num value" });
    const vintages = entry.value === null ? null : mixedVintages(entry.input_periods, state.period);
    if (vintages) cell.append(element("small", T.vintagesOf(vintages), { class: "vintages" }));
    row.append(cell);
    row.append(element("td", entry.rank ? T.rankOf(entry.rank, entry.ranked) : T.none, { class: "num rank" }));
    const chartCell = row.insertCell();
    const holder = element("div", null, { class: "chart" });
    const canvas = element("canvas", null, { id: `series-${entry.id}`, role: "img",
      "aria-label": `${T.series}: ${entry.series.map((point) => `${point.period} ${number(point.value)}`).join("; ")}` });
    holder.append(canvas);
    chartCell.append(holder);
  });
  body.append(table);
  profile.indicators.forEach((entry) => seriesChart(`series-${entry.id}`, [{ label: entry.title[state.lang], series: entry.series }]));
}

function fillPlaces() {
  const select = $("municipality");
  select.append(new Option(T.none, ""));
  const places = [...data.context.places].sort((a, b) => a.name.localeCompare(b.name, T.locale));
  places.forEach((place) => select.append(new Option(place.name, place.code)));
  select.addEventListener("change", () => selectMunicipality(select.value || null, { openDrawer: false }));
  const choices = $("compare-choices");
  places.forEach((place) => {
    const id = `compare-${place.code}`;
    const box = element("input", null, { type: "checkbox", id, value: place.code });
    box.checked = state.compare.includes(place.code);
    box.addEventListener("change", () => {
      if (box.checked && state.compare.length >= MAX_COMPARED) {
        box.checked = false;
        $("compare-hint").textContent = T.compareLimit;
        return;
      }
      state.compare = box.checked ? [...state.compare, place.code] : state.compare.filter((code) => code !== place.code);
      $("compare-hint").textContent = T.compareHint;
      writeUrl();
      drawComparison();
    });
    const label = element("label", null, { for: id });
    label.append(box, place.name);
    choices.append(label);
  });
}

async function selectMunicipality(code, { openDrawer }) {
  state.municipality = code;
  writeUrl();
  drawRanking();
  if (openDrawer && phone) toggleDrawer(true);
  await drawProfile();
  if (code) $("profile").scrollIntoView({ block: "start" });
}

async function drawComparison() {
  const body = $("compare-body");
  body.replaceChildren();
  if (charts["compare-chart"]) { charts["compare-chart"].destroy(); delete charts["compare-chart"]; }
  if (state.compare.length < 2) return;
  const profiles = await Promise.all(state.compare.map(profileOf));
  const table = element("table", null, { id: "compare-table" });
  const head = table.createTHead().insertRow();
  head.append(element("th", T.indicator, { scope: "col" }));
  profiles.forEach((profile) => head.append(element("th", profile.name, { scope: "col" })));
  const rows = table.createTBody();
  profiles[0].indicators.forEach((entry, i) => {
    const row = rows.insertRow();
    row.dataset.indicator = entry.id;
    row.append(element("th", entry.title[state.lang], { scope: "row" }));
    profiles.forEach((profile) => {
      const own = profile.indicators[i];
      row.append(element("td", own.rank ? `${number(own.value)} (${T.rankOf(own.rank, own.ranked)})` : number(own.value), { class: "num" }));
    });
  });
  body.append(table);
  const holder = element("div", null, { class: "chart mid" });
  const selected = profiles.map((profile) => ({ label: profile.name, series: profile.indicators.find((e) => e.id === state.indicator).series }));
  holder.append(element("canvas", null, { id: "compare-chart", role: "img",
    "aria-label": `${title(data.sheets[state.indicator])}: ${selected.map((set) => set.label).join(", ")}` }));
  body.append(holder);
  seriesChart("compare-chart", selected);
}

// ---- methodology ----
function openSheet() {
  const sheet = data.sheet;
  const S = T.sheet;
  $("sheet-title").textContent = `${S.title}: ${title(sheet)}`;
  const list = $("sheet-body");
  list.replaceChildren();
  const rows = shownRows();
  const features = data.items.features.map((feature) => feature.properties);
  const computed = features.map((p) => p.computed_at).filter(Boolean).sort().pop();
  const flags = rows.filter((row) => row.flag).map((row) => `${row.municipality_name}: ${T.flags[row.flag] || row.flag}`);
  const entries = [
    [S.theme, sheet.theme_title[state.lang]], [S.formula, sheet.formula], [S.unit, sheet.unit],
    [S.direction, T.directions[sheet.direction]], [S.inputs, sheet.inputs.join(", ")],
    [S.references, sheet.references.join("\n") || T.none], [S.sdg, sheet.sdg_target || T.none], [S.iso, sheet.iso37120 || T.none],
    [S.periods, sheet.periods.join(", ") || T.none], [S.periodRule, sheet.period_rule],
    [`${S.vintages} (${state.period})`, vintagesText(features) || T.none],
    [`${S.n} (${state.period})`, rows.map((row) => `${row.municipality_name}: ${row.n ?? T.none}`).join("\n") || T.noData],
    [S.flags, flags.join("\n") || T.none], [S.computed, computed ? dateText(computed) : T.none],
    [S.runs, [...new Set(features.flatMap((p) => (p.input_runs || "").split(",")).filter(Boolean))].join("\n") || T.none],
    [S.version, [...new Set(features.map((p) => p.code_version).filter(Boolean))].join(", ") || T.none],
  ];
  entries.forEach(([term, value]) => { list.append(element("dt", term), element("dd", value)); });
  $("sheet").showModal();
}

// ---- start ----
async function start() {
  translatePage();
  $("legend-box").open = !phone;  // on a phone the legend opens on demand, clear of the map
  // The indicator named in the URL is asked for with the rest, not after them.
  const asked = state.indicator ? json(`/indicators/${encodeURIComponent(state.indicator)}`) : null;
  asked?.catch(() => {});  // an unknown id was refused with the page itself; the default is shown instead
  const [themes, sheets, context, outlines] = await Promise.all([
    json("/themes"), json("/indicators"), json("/map/context"), json("/collections/municipalities/items?limit=1000"),
  ]);
  data.themes = themes.themes;
  sheets.indicators.forEach((sheet) => { data.sheets[sheet.id] = sheet; });
  data.context = context;
  const places = new Set(context.places.map((place) => place.code));  // a mistyped code in a shared URL is dropped
  if (!places.has(state.municipality)) state.municipality = null;
  state.compare = state.compare.filter((code) => places.has(code));
  $("sample-badge").hidden = !context.sample;
  $("sample-badge").title = T.sampleBadgeTitle;
  fillNavigation();
  fillTime();
  fillClassification();
  fillOverlayControls();
  fillPlaces();
  $("open-sheet").addEventListener("click", openSheet);
  await buildMap();
  addLayers(outlines);
  if (!(state.at.length === 3 && state.at.every(Number.isFinite)) && outlines.features.length) {
    const bounds = new maplibregl.LngLatBounds();  // no view in the URL: the municipalities, whole
    outlines.features.forEach((feature) => feature.geometry.coordinates.flat(2).forEach((point) => bounds.extend(point)));
    map.fitBounds(bounds, { padding: 30, animate: false });
  }
  const known = Object.keys(data.sheets);
  if (state.indicator && data.sheets[state.indicator]) await selectIndicator(state.indicator, asked);
  else await selectIndicator(known.includes("population_density") ? "population_density" : known[0]);
  document.body.dataset.ready = "true";
}

start();
