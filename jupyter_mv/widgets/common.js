// Shared by the jupyter_mv widgets (prepended to history.js and diff.js by assets.py; no bundler).
// Python computes everything; these helpers only turn synced data into DOM.

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

const SVGNS = "http://www.w3.org/2000/svg";
function s(tag, attrs, ...children) {
  const node = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c) node.append(c);
  return node;
}

// Synced state is RFC 8259 JSON: non-finite numbers arrive as "NaN" / "Infinity" / "-Infinity".
const NONFINITE_TEXT = { NaN: "NaN", Infinity: "∞", "-Infinity": "-∞" };

function fmt(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "string" && Object.prototype.hasOwnProperty.call(NONFINITE_TEXT, v)) return NONFINITE_TEXT[v];
  if (typeof v === "number") {
    if (!isFinite(v)) return Number.isNaN(v) ? "NaN" : v > 0 ? "∞" : "-∞";
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(3) : String(Number(v.toPrecision(5)));
  }
  if (typeof v === "string") return v;
  try { return JSON.stringify(v); } catch (e) { return String(v); }
}

function relTime(iso) {
  const t = Date.parse(iso);
  if (isNaN(t)) return iso || "";
  const sec = Math.round((Date.now() - t) / 1000);
  if (sec < 45) return "just now";
  const steps = [[60, "minute"], [3600, "hour"], [86400, "day"], [2592000, "month"], [31536000, "year"]];
  let unit = "minute", size = 60;
  for (const [sz, name] of steps) if (sec >= sz * 0.75) { unit = name; size = sz; }
  const n = Math.max(1, Math.round(sec / size));
  return `${n} ${unit}${n === 1 ? "" : "s"} ago`;
}

function exactTime(iso) {
  const t = Date.parse(iso);
  return isNaN(t) ? (iso || "") : new Date(t).toLocaleString() + "  (" + iso + ")";
}

function varLine(v) {
  const sm = v.summary || {};
  const bits = [String(v.type || "").split(".").pop()];
  if (sm.shape) bits.push(sm.shape.length ? sm.shape.join("×") : "scalar");
  if (sm.dtype) bits.push(sm.dtype);
  if (sm.class && !sm.shape) bits.push(sm.class);
  return bits.join(" ");
}

// -- recorded outputs are untrusted content ------------------------------------------------------
// A version may come from a bundle someone sent, and this page holds the server's token: no recorded
// output may run script here. HTML (and Markdown, which Python renders to HTML) and SVG go through
// DOMPurify (assets.py prepends it); SVG is then shown as an <img>, where browsers run no script and
// load nothing; application/javascript and other mime types are never rendered (Python sends only
// the types below). No <style>, style="", id or name: an output must not restyle, cover or clobber
// the page. Links open in a new tab without an opener.
const HTML_POLICY = {
  FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "option", "link", "meta", "base"],
  FORBID_ATTR: ["style", "id", "name"],
  ALLOW_DATA_ATTR: false,
  RETURN_DOM_FRAGMENT: true,
};
const SVG_POLICY = { USE_PROFILES: { svg: true, svgFilters: true }, FORBID_TAGS: ["a"] };
DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A" && node.hasAttribute("href")) {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
});

function safeHTML(html) {
  return DOMPurify.sanitize(String(html), HTML_POLICY);
}

// A sanitized SVG document as an <img> data URL. The HTML parser DOMPurify uses drops the XML
// prolog and may drop namespace declarations, which an SVG image needs, so they are put back.
function safeSVGImage(svg) {
  let clean = DOMPurify.sanitize(String(svg), SVG_POLICY).trim();
  if (!clean.startsWith("<svg")) return null;
  const head = clean.slice(0, clean.indexOf(">"));
  if (!/\sxmlns=/.test(head)) clean = clean.replace("<svg", '<svg xmlns="http://www.w3.org/2000/svg"');
  if (clean.includes("xlink:") && !/\sxmlns:xlink=/.test(head)) clean = clean.replace("<svg", '<svg xmlns:xlink="http://www.w3.org/1999/xlink"');
  return h("img", { class: "mv-out mv-img", src: "data:image/svg+xml;charset=utf-8," + encodeURIComponent(clean) });
}

// One recorded output, as the notebook rendered it: image, HTML, markdown/plain text, stream, error.
function renderOutput(o) {
  if (o.type === "stream") return h("pre", { class: "mv-out mv-stream" + (o.name === "stderr" ? " mv-stderr" : "") }, o.text);
  if (o.type === "error") return h("pre", { class: "mv-out mv-error" }, o.text);
  const d = o.data || {};
  for (const mime of ["image/png", "image/jpeg", "image/gif", "image/webp"]) {
    if (d[mime]) return h("img", { class: "mv-out mv-img", src: `data:${mime};base64,${String(d[mime]).trim()}` });
  }
  if (d["image/svg+xml"]) {
    const img = safeSVGImage(d["image/svg+xml"]);
    if (img) return img;
  }
  if (d["text/html"]) return h("div", { class: "mv-out mv-html" }, safeHTML(d["text/html"]));
  const txt = d["text/markdown"] || d["text/plain"];
  return h("pre", { class: "mv-out" }, txt || "");
}

function renderCells(cells) {
  return h("div", { class: "mv-cells" }, cells.map((c) => h("details", { class: "mv-cell" },
    h("summary", {}, h("code", {}, `In [${c.execution_count ?? " "}]: `), (c.source || "").split("\n")[0].slice(0, 100)),
    h("pre", { class: "mv-code" }, c.source || ""),
    h("div", { class: "mv-outputs" }, (c.outputs || []).map(renderOutput)))));
}

function table(head, rows, cls) {
  return h("table", { class: "mv-table " + (cls || "") },
    h("thead", {}, h("tr", {}, head.map((x) => h("th", {}, x)))),
    h("tbody", {}, rows.map((r) => h("tr", { class: r.cls || "" }, (r.cells || r).map((c) => h("td", {}, c))))));
}

// -- the diff renderer (the diff widget, and the history widget's Diff panel) -------------------
function renderDiff(d, state, onToggle) {
  const root = h("div", { class: "mv-diffview" });
  if (!d || !d.a) return root;
  root.append(h("div", { class: "mv-diff-title" }, h("b", {}, `diff ${d.a} → ${d.b}`), " ", h("small", {}, d.notebook || "")));
  // params
  const p = d.params || {};
  const prow = [];
  for (const [k, [o, n]] of Object.entries(p.changed || {})) prow.push({ cls: "mv-changed", cells: [k, fmt(o), fmt(n), "changed"] });
  for (const [k, v] of Object.entries(p.added || {})) prow.push({ cls: "mv-added", cells: [k, "", fmt(v), "added"] });
  for (const [k, v] of Object.entries(p.removed || {})) prow.push({ cls: "mv-removed", cells: [k, fmt(v), "", "removed"] });
  if (state.showAll) for (const [k, v] of Object.entries(p.same || {})) prow.push({ cls: "mv-same", cells: [k, fmt(v), fmt(v), ""] });
  const nSame = Object.keys(p.same || {}).length;
  root.append(h("div", { class: "mv-section mv-params" }, h("h4", {}, "Params ",
    h("label", { class: "mv-toggle" }, h("input", { type: "checkbox", class: "mv-show-all", checked: state.showAll || undefined, onchange: (e) => onToggle(e.target.checked) }), ` show all (${nSame} unchanged)`)),
    prow.length ? table(["param", d.a, d.b, ""], prow) : h("p", { class: "mv-none" }, "no param changes")));
  // metrics
  const m = d.metrics || {};
  const mrow = [];
  for (const [k, c] of Object.entries(m.changed || {})) {
    const up = c.delta > 0;
    mrow.push({ cls: "mv-changed", cells: [k, fmt(c.old), fmt(c.new), h("span", { class: up ? "mv-up" : "mv-down" }, `${up ? "▲" : "▼"} ${c.delta > 0 ? "+" : ""}${fmt(c.delta)}`)] });
  }
  for (const [k, v] of Object.entries(m.added || {})) mrow.push({ cls: "mv-added", cells: [k, "", fmt(v), "added"] });
  for (const [k, v] of Object.entries(m.removed || {})) mrow.push({ cls: "mv-removed", cells: [k, fmt(v), "", "removed"] });
  root.append(h("div", { class: "mv-section mv-metrics" }, h("h4", {}, "Metrics"),
    mrow.length ? table(["metric", d.a, d.b, "delta"], mrow) : h("p", { class: "mv-none" }, "no metric changes")));
  // variables
  const v = d.variables || {};
  const vrows = [];
  for (const x of v.changed || []) vrows.push({ cls: "mv-changed", cells: [x.name, varLine(x.old), varLine(x.new), renderAnalysis(x)] });
  for (const x of v.added || []) vrows.push({ cls: "mv-added", cells: [x.name, "", varLine(x), "added"] });
  for (const x of v.removed || []) vrows.push({ cls: "mv-removed", cells: [x.name, varLine(x), "", "removed"] });
  root.append(h("div", { class: "mv-section mv-variables" }, h("h4", {}, "Variables ", h("small", {}, `${(v.same || []).length} unchanged`)),
    vrows.length ? table(["variable", d.a, d.b, "change"], vrows) : h("p", { class: "mv-none" }, "no variable changes")));
  // cells
  const cells = (d.cells || []).filter((c) => c.status !== "same");
  root.append(h("div", { class: "mv-section mv-celldiff" }, h("h4", {}, `Cells `, h("small", {}, `${cells.length} changed of ${(d.cells || []).length}`)),
    cells.map(renderCellDiff)));
  return root;
}

function renderAnalysis(x) {
  const a = x.analysis;
  const ch = x.changes || {};
  const box = h("div", { class: "mv-analysis" });
  const line = (...c) => box.append(h("div", {}, ...c));
  if (!a) {
    for (const [k, val] of Object.entries(ch)) if (Array.isArray(val)) line(`${k}: ${fmt(val[0])} → ${fmt(val[1])}`);
    return box;
  }
  if (a.kind === "array") {
    if (JSON.stringify(a.shape[0]) !== JSON.stringify(a.shape[1])) line(`shape ${fmt(a.shape[0])} → ${fmt(a.shape[1])}`);
    if (a.dtype[0] !== a.dtype[1]) line(`dtype ${a.dtype[0]} → ${a.dtype[1]}`);
    for (const [k, [o, n]] of Object.entries(a.stats || {})) line(`${k} ${fmt(o)} → ${fmt(n)}`);
    if (a.fraction_changed !== undefined && a.fraction_changed !== null)
      line(h("b", {}, `${(a.fraction_changed * 100).toFixed(a.fraction_changed < 0.01 ? 3 : 1)}% of elements changed`), a.estimated ? " (estimated from chunks)" : "");
  } else if (a.kind === "frame") {
    line(`rows ${fmt(a.rows[0])} → ${fmt(a.rows[1])}`);
    for (const [c, t] of Object.entries(a.columns_added || {})) line(h("span", { class: "mv-added" }, `+ column ${c} (${t})`));
    for (const [c, t] of Object.entries(a.columns_removed || {})) line(h("span", { class: "mv-removed" }, `− column ${c} (${t})`));
    for (const [c, [o, n]] of Object.entries(a.columns_retyped || {})) line(`column ${c}: ${o} → ${n}`);
    if (a.rows_changed !== undefined) line(`${a.rows_changed} row(s) changed, ${a.rows_added} added, ${a.rows_removed} removed`);
    if ((a.sample || []).length) box.append(table(["index", "old", "new"], a.sample.map((r) => [fmt(r.index), fmt(r.old), fmt(r.new)]), "mv-sample"));
  } else if (a.kind === "model") {
    const hp = a.hyperparameters || {};
    for (const [k, [o, n]] of Object.entries(hp.changed || {})) line(`${k}: ${fmt(o)} → ${fmt(n)}`);
    if (a.parameters) line(`parameters ${fmt(a.parameters[0])} → ${fmt(a.parameters[1])}`);
    if ((a.weights || []).length) box.append(table(["weights", "‖Δ‖", "relative"],
      a.weights.map((w) => [w.name, fmt(w.delta_norm), w.relative === null || w.relative === undefined ? "" : (w.relative * 100).toFixed(2) + "%"]), "mv-weights"));
    if (a.weights_note) line(h("i", {}, a.weights_note));
  } else if (a.kind === "prompt") {
    const ph = a.placeholders || {};
    const kinds = a.prompt_kind || [];
    line(`prompt (${kinds[0] === kinds[1] ? kinds[1] : `${kinds[0]} → ${kinds[1]}`}), placeholders: `,
      h("code", {}, (ph.new || []).join(", ") || "none"),
      ...(ph.added || []).map((p) => h("span", { class: "mv-added" }, ` +${p}`)),
      ...(ph.removed || []).map((p) => h("span", { class: "mv-removed" }, ` −${p}`)));
    box.append(h("pre", { class: "mv-prompt-diff" }, (a.line_diff || []).map((l) =>
      h("span", { class: l.startsWith("+") ? "mv-added" : l.startsWith("-") ? "mv-removed" : l.startsWith("@@") ? "mv-hunk" : "" }, l + "\n"))));
    if (a.truncated) line(h("i", {}, "long prompt: the diff covers its first part"));
  } else if (a.kind === "eval") {
    const c = a.counts;
    if (c) line(h("b", {}, `by ${a.id_column || "index"}: ${c.regressions} regressed, ${c.improvements} improved, ${c.added} new, ${c.removed} removed`), `, ${c.unchanged} unchanged`);
    if (a.examples_note) line(h("i", {}, a.examples_note));
    if (a.note) line(h("span", { class: "mv-removed mv-eval-note" }, `⚠ ${a.note}`));
    for (const [k, m] of Object.entries(a.mean_delta || {})) {
      const up = m.delta > 0;
      line(`mean ${k}: ${fmt(m.old)} → ${fmt(m.new)}`, m.delta === null || m.delta === undefined ? "" : h("span", { class: up ? "mv-up" : "mv-down" }, ` ${up ? "+" : ""}${fmt(m.delta)}`));
    }
    const rows = [];
    const scores = (e) => Object.entries(e.scores).map(([k, [o, n]]) => `${k} ${fmt(o)} → ${fmt(n)}`).join(", ");
    for (const e of a.regressions || []) rows.push({ cls: "mv-removed", cells: ["regressed", fmt(e.id), scores(e)] });
    for (const e of a.improvements || []) rows.push({ cls: "mv-added", cells: ["improved", fmt(e.id), scores(e)] });
    for (const id of a.added || []) rows.push({ cls: "mv-added", cells: ["new", fmt(id), ""] });
    for (const id of a.removed || []) rows.push({ cls: "mv-removed", cells: ["removed", fmt(id), ""] });
    if (rows.length) box.append(table(["", "example", "scores"], rows, "mv-eval"));
  } else if (a.kind === "error") {
    line(h("i", {}, `analysis failed: ${a.error}`));
  }
  return box;
}

// Prompts (their text and placeholders) and eval tables (scores, means, dataset hash) of a version's
// variables, from their summaries (jupyter_mv/prompts.py, evals.py).
function renderLLM(variables) {
  const box = h("div", { class: "mv-llm" });
  const withPrompt = variables.filter((v) => v.summary && v.summary.prompt);
  const withEval = variables.filter((v) => v.summary && v.summary.eval);
  if (withPrompt.length) box.append(h("h4", {}, "Prompts"), withPrompt.map((v) => {
    const p = v.summary.prompt;
    return h("details", { class: "mv-prompt", open: true },
      h("summary", {}, h("b", {}, v.name), ` ${p.kind} · placeholders: `, h("code", {}, (p.placeholders || []).join(", ") || "none"),
        p.truncated ? ` · first ${String(p.text || "").length} of ${p.truncated} characters` : ""),
      h("pre", { class: "mv-prompt-text" }, p.text || ""));
  }));
  if (withEval.length) box.append(h("h4", {}, "Eval tables"), table(["table", "examples", "by", "mean scores", "dataset"],
    withEval.map((v) => {
      const e = v.summary.eval;
      return [v.name, fmt(e.rows), e.id_column || "index",
        Object.entries(e.means || {}).map(([k, m]) => `${k} ${fmt(m)}`).join(", "), h("code", {}, String(e.dataset_hash || "").slice(0, 12))];
    }), "mv-evals"));
  return box;
}

function renderCellDiff(c) {
  const where = c.b_index !== null && c.b_index !== undefined ? c.b_index : c.a_index;
  const box = h("div", { class: `mv-cell-diff mv-${c.status}` }, h("div", { class: "mv-cell-head" }, `cell ${where}: ${c.status}`, c.outputs_changed ? " (outputs changed)" : ""));
  if (c.sbs) {
    box.append(h("table", { class: "mv-sbs" }, h("tbody", {}, c.sbs.map((r) => h("tr", { class: "mv-l-" + r[4] },
      h("td", { class: "mv-ln" }, r[0] ?? ""), h("td", { class: "mv-code-l" }, r[1] ?? ""),
      h("td", { class: "mv-ln" }, r[2] ?? ""), h("td", { class: "mv-code-r" }, r[3] ?? ""))))));
  } else {
    box.append(h("pre", { class: "mv-code" }, c.b_source ?? c.a_source ?? ""));
  }
  if ((c.outputs_diff || []).length) box.append(h("pre", { class: "mv-outdiff" }, c.outputs_diff.slice(2).map((l) =>
    h("span", { class: l.startsWith("+") ? "mv-added" : l.startsWith("-") ? "mv-removed" : "" }, l + "\n"))));
  if (c.images) box.append(h("div", { class: "mv-images" },
    h("div", {}, h("div", { class: "mv-img-label" }, "before"), (c.images.a || []).map((im) => renderOutput({ type: "display", data: { [im.mime]: im.data } }))),
    h("div", {}, h("div", { class: "mv-img-label" }, "after"), (c.images.b || []).map((im) => renderOutput({ type: "display", data: { [im.mime]: im.data } })))));
  return box;
}

// -- the metrics chart: one line per metric, version on x; hover shows the version, click selects it
const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939"];

function renderChart(chart, hidden, onPick, onToggle, selectedIds) {
  const names = Object.keys(chart.series || {});
  const box = h("div", { class: "mv-chart" });
  if (!names.length || !(chart.x || []).length) { box.append(h("p", { class: "mv-none" }, "no metrics recorded yet")); return box; }
  const W = 640, H = 190, L = 48, R = 10, T = 10, B = 26;
  const xs = chart.x;
  let lo = Infinity, hi = -Infinity;
  for (const n of names) if (!hidden.has(n)) for (const y of chart.series[n]) if (y !== null && isFinite(y)) { lo = Math.min(lo, y); hi = Math.max(hi, y); }
  if (!isFinite(lo)) { lo = 0; hi = 1; }
  if (lo === hi) { lo -= 0.5; hi += 0.5; }
  const x0 = Math.min(...xs), x1 = Math.max(...xs);
  const X = (x) => L + (x1 === x0 ? (W - L - R) / 2 : ((x - x0) / (x1 - x0)) * (W - L - R));
  const Y = (y) => T + (1 - (y - lo) / (hi - lo)) * (H - T - B);
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "mv-chart-svg", width: "100%", height: H });
  svg.append(s("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "mv-axis" }), s("line", { x1: L, y1: T, x2: L, y2: H - B, class: "mv-axis" }));
  for (const y of [lo, (lo + hi) / 2, hi]) {
    const t = s("text", { x: L - 4, y: Y(y) + 3, "text-anchor": "end", class: "mv-tick" }); t.textContent = fmt(y); svg.append(t);
  }
  const first = s("text", { x: X(x0), y: H - 8, "text-anchor": "start", class: "mv-tick" }); first.textContent = chart.labels[0];
  const last = s("text", { x: X(x1), y: H - 8, "text-anchor": "end", class: "mv-tick" }); last.textContent = chart.labels[chart.labels.length - 1];
  svg.append(first, last);
  names.forEach((n, k) => {
    if (hidden.has(n)) return;
    const color = COLORS[k % COLORS.length];
    const ys = chart.series[n];
    let d = "";
    ys.forEach((y, i) => { if (y !== null && isFinite(y)) d += (d ? "L" : "M") + X(xs[i]).toFixed(1) + "," + Y(y).toFixed(1); });
    svg.append(s("path", { d, fill: "none", stroke: color, "stroke-width": 1.5 }));
    ys.forEach((y, i) => {
      if (y === null || !isFinite(y)) return;
      const sel = selectedIds.has(chart.ids[i]);
      const dot = s("circle", { cx: X(xs[i]), cy: Y(y), r: sel ? 5 : 3.2, fill: sel ? "#fff" : color, stroke: color, "stroke-width": 1.5,
        class: "mv-point", "data-id": chart.ids[i], "data-label": chart.labels[i], onclick: () => onPick(chart.ids[i]) });
      const title = s("title"); title.textContent = `${chart.labels[i]}  ${n} = ${fmt(y)}`; dot.append(title);
      svg.append(dot);
    });
  });
  box.append(svg);
  box.append(h("div", { class: "mv-legend" }, names.map((n, k) => h("label", { class: "mv-legend-item" },
    h("input", { type: "checkbox", checked: !hidden.has(n) || undefined, onchange: () => onToggle(n) }),
    h("span", { class: "mv-swatch", style: `background:${COLORS[k % COLORS.length]}` }), n))));
  return box;
}
