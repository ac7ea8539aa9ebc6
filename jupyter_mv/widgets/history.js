// The history browser. common.js (prepended) provides h, fmt, relTime, renderDiff, renderChart...
// State lives in the model; this file draws it and turns clicks into traitlet changes.

const BASE_COLUMNS = [
  ["version", "version"], ["name", "name"], ["message", "message"], ["created", "created"], ["tags", "tags"],
];
const TAIL_COLUMNS = [["variables", "variables"], ["size", "size"], ["parent", "parent"]];

function render({ model, el }) {
  el.classList.add("jupyter-mv-widget", "mv-history");
  const ui = { hidden: new Set(), showAll: false, typing: null };
  const commit = (changes) => { for (const [k, v] of Object.entries(changes)) model.set(k, v); model.save_changes(); };
  const send = (action, extra) => {
    showMessage({ kind: "info", text: "working…" });
    commit({ request: { action, seq: Date.now() + Math.random(), ...(extra || {}) } });
  };

  // -- static parts (built once so inputs keep focus) ------------------------------------------
  const title = h("div", { class: "mv-title" });
  const filter = h("input", { class: "mv-filter", type: "search", placeholder: "filter: text, tag, acc>0.9, lr=0.01", value: model.get("filter") || "" });
  filter.addEventListener("input", () => {
    clearTimeout(ui.typing);
    ui.typing = setTimeout(() => commit({ filter: filter.value }), 250);
  });
  const prefix = h("input", { class: "mv-prefix", type: "text", placeholder: "prefix (optional)", size: 12 });
  const tagInput = h("input", { class: "mv-tag-input", type: "text", placeholder: "tag", size: 10 });
  const exportPath = h("input", { class: "mv-export-path", type: "text", placeholder: "bundle.mvz", size: 12 });
  const picked = () => [...el.querySelectorAll("input.mv-var-pick")];
  const btn = (label, cls, fn, tip) => h("button", { class: `mv-btn ${cls}`, type: "button", title: tip, onclick: fn }, label);
  const restoreBtn = btn("Restore", "mv-restore", () => {
    const boxes = picked();
    const names = boxes.filter((b) => b.checked).map((b) => b.dataset.name);
    if (boxes.length && !names.length) { showMessage({ kind: "error", text: "pick at least one variable to restore" }); return; }
    send("restore", { names: names.length === boxes.length ? [] : names, prefix: prefix.value.trim() });
  }, "put the selected version's variables (the ticked ones) back into the kernel");
  const outputsBtn = btn("Restore outputs", "mv-restore-outputs", () => send("restore_outputs"), "re-display the selected version's cell outputs");
  const diffBtn = btn("Diff", "mv-diff", () => send("diff"), "two rows selected: diff them; one: diff it against the current state");
  const tagBtn = btn("Tag", "mv-tag", () => send("tag", { tag: tagInput.value.trim() }), "tag the selected version");
  const exportBtn = btn("Export", "mv-export", () => send("export", { path: exportPath.value.trim() }), "write the selected version as a bundle");
  const exportGroup = h("span", { class: "mv-group mv-export-group" }, exportPath, exportBtn);
  const refreshBtn = btn("↻", "mv-refresh", () => send("refresh"), "reload the history from the store");
  const toolbar = h("div", { class: "mv-toolbar" }, filter,
    h("span", { class: "mv-group" }, prefix, restoreBtn), outputsBtn, diffBtn,
    h("span", { class: "mv-group" }, tagInput, tagBtn), exportGroup, refreshBtn);
  const message = h("div", { class: "mv-message" });
  const chartBox = h("div", { class: "mv-chart-box" });
  const tableBox = h("div", { class: "mv-table-box" });
  const pager = h("div", { class: "mv-pager" });
  const detailsBox = h("div", { class: "mv-details" });
  const diffBox = h("div", { class: "mv-diff-panel" });
  const replayBox = h("div", { class: "mv-replay" });
  el.replaceChildren(title, toolbar, message, chartBox, tableBox, pager, diffBox, detailsBox, replayBox);

  function showMessage(msg) {
    message.className = `mv-message mv-msg-${msg.kind || "info"}`;
    message.textContent = msg.text || "";
    // a choice the kernel asks the user to make (restoring an untrusted version): only a click sends
    // the request it carries; Cancel sends nothing
    const choices = (msg.choices || []).map((c) => btn(c.label, c.class || "", () => {
      if (c.request) send(c.request.action, c.request);
      else showMessage({ kind: "info", text: c.cancel || "cancelled" });
    }));
    if (choices.length) message.append(h("div", { class: "mv-choices" }, choices));
  }

  // -- table -----------------------------------------------------------------------------------
  function columns() {
    const cols = model.get("all_notebooks") ? [["notebook", "notebook"]] : [];
    cols.push(...BASE_COLUMNS);
    for (const k of model.get("key_params") || []) cols.push([`param:${k}`, k]);
    for (const k of model.get("metric_names") || []) cols.push([`metric:${k}`, k]);
    cols.push(...TAIL_COLUMNS);
    return cols;
  }

  function select(id, additive) {
    let sel = (model.get("selected") || []).slice();
    if (additive) {
      sel = sel.includes(id) ? sel.filter((x) => x !== id) : [...sel, id].slice(-2);
    } else {
      sel = [id];
    }
    commit({ selected: sel });
  }

  function cell(row, key) {
    if (key === "version") return h("span", { class: "mv-vlabel" + (row.branch ? " mv-branch" : "") },
      h("span", { class: "mv-dot", title: row.branch ? `branch from ${row.parent}` : "" }), row.label);
    if (key === "created") return h("span", { title: exactTime(row.created) }, relTime(row.created));
    if (key === "tags") return h("span", {}, (row.tags || []).map((t) => h("span", { class: "mv-tagchip" }, t)));
    if (key === "variables") return h("span", { title: row.variable_names }, String(row.variables));
    if (key === "parent") return row.branch ? h("span", { class: "mv-branch-from", title: "a snapshot taken after restoring an older version" }, `⑂ ${row.parent}`) : row.parent;
    if (key.startsWith("param:")) return fmt((row.params || {})[key.slice(6)]);
    if (key.startsWith("metric:")) return fmt((row.metrics || {})[key.slice(7)]);
    return fmt(row[key]);
  }

  function drawTable() {
    const cols = columns();
    const sel = new Set(model.get("selected") || []);
    const sortBy = model.get("sort_by"), desc = model.get("sort_desc");
    const head = h("tr", {}, h("th", { class: "mv-pick" }, ""), cols.map(([key, label]) => h("th", {
      class: "mv-sortable" + (sortBy === key ? " mv-sorted" : ""), "data-col": key,
      onclick: () => commit(sortBy === key ? { sort_desc: !desc } : { sort_by: key, sort_desc: ["version", "created", "size"].includes(key) || key.startsWith("metric:") }),
    }, label, sortBy === key ? (desc ? " ▼" : " ▲") : "")));
    const rows = (model.get("rows") || []).map((row) => h("tr", {
      class: "mv-row" + (sel.has(row.id) ? " mv-selected" : ""), "data-id": row.id, "data-version": row.label,
      onclick: (e) => { if (e.target.tagName !== "INPUT") select(row.id, e.ctrlKey || e.metaKey || e.shiftKey); },
    }, h("td", { class: "mv-pick" }, h("input", { type: "checkbox", class: "mv-row-pick", checked: sel.has(row.id) || undefined, onchange: () => select(row.id, true), title: "select (two for Diff)" })),
      cols.map(([key]) => h("td", { class: `mv-col-${key.replace(/[^\w-]/g, "_")}` }, cell(row, key)))));
    const total = model.get("total"), count = model.get("count");
    tableBox.replaceChildren(count ? h("table", { class: "mv-table mv-log" }, h("thead", {}, head), h("tbody", {}, rows))
      : h("p", { class: "mv-none" }, "No versions yet: take one with %mv_snapshot."));
    const page = model.get("page"), size = model.get("page_size");
    const pages = Math.max(1, Math.ceil(total / size));
    pager.replaceChildren(
      h("button", { class: "mv-btn mv-prev", type: "button", disabled: page <= 0 || undefined, onclick: () => commit({ page: page - 1 }) }, "‹ Prev"),
      h("span", { class: "mv-pageinfo" }, ` page ${page + 1} of ${pages} · ${total} of ${count} versions `),
      h("button", { class: "mv-btn mv-next", type: "button", disabled: page >= pages - 1 || undefined, onclick: () => commit({ page: page + 1 }) }, "Next ›"));
    title.replaceChildren(h("b", {}, "Model versions"), " ", h("small", {}, model.get("notebook") || ""));
    exportGroup.style.display = model.get("can_export") ? "" : "none";
  }

  function drawChart() {
    chartBox.replaceChildren(renderChart(model.get("chart") || {}, ui.hidden, (id) => select(id, false),
      (name) => { ui.hidden.has(name) ? ui.hidden.delete(name) : ui.hidden.add(name); drawChart(); },
      new Set(model.get("selected") || [])));
  }

  // -- details ---------------------------------------------------------------------------------
  function drawDetails() {
    const d = model.get("details") || {};
    if (!d.id) { detailsBox.replaceChildren(); return; }
    const env = d.environment || {};
    const git = env.git ? `, git ${String(env.git.commit || "").slice(0, 10)}${env.git.dirty ? " (dirty)" : ""}` : "";
    const kv = (obj) => Object.entries(obj || {}).map(([k, v]) => [k, fmt(v)]);
    detailsBox.replaceChildren(
      h("h3", {}, `${d.id}`, d.name ? ` · ${d.name}` : "", d.message ? ` — ${d.message}` : ""),
      h("div", { class: "mv-meta" }, `created ${exactTime(d.created)} · ${d.kind}`, d.parent ? ` · parent ${d.parent}` : "",
        (d.lineage || []).length > 1 ? ` · lineage ${d.lineage.join(" → ")}` : "",
        (d.children || []).length ? ` · children ${d.children.join(", ")}` : "",
        (d.tags || []).length ? h("span", {}, " · ", d.tags.map((t) => h("span", { class: "mv-tagchip" }, t))) : ""),
      h("h4", {}, "Variables ", h("small", {}, "(ticked ones are restored)")),
      table(["", "name", "type", "shape", "dtype", "size", "hash"], (d.variables || []).map((v) => [
        h("input", { type: "checkbox", class: "mv-var-pick", "data-name": v.name, checked: true }),
        v.name, String(v.type).split(".").pop(), v.summary && v.summary.shape ? v.summary.shape.join("×") : "",
        (v.summary && v.summary.dtype) || "", v.size, h("code", {}, v.hash)]), "mv-vars"),
      renderLLM(d.variables || []),
      h("div", { class: "mv-cols2" },
        h("div", {}, h("h4", {}, "Params"), table(["param", "value"], kv(d.params))),
        h("div", {}, h("h4", {}, "Metrics"), table(["metric", "value"], kv(d.metrics)))),
      h("h4", {}, "Environment"),
      h("div", { class: "mv-env" }, `Python ${env.python || "?"} on ${env.platform || "?"}, ${env.packages || 0} packages`, git,
        Object.keys(env.key_packages || {}).length ? " · " + Object.entries(env.key_packages).map(([k, v]) => `${k} ${v}`).join(", ") : ""),
      h("h4", {}, `Cells (${(d.cells || []).length})`), renderCells(d.cells || []));
  }

  function drawDiff() {
    const d = model.get("diff") || {};
    if (!d.a) { diffBox.replaceChildren(); return; }
    diffBox.replaceChildren(h("button", { class: "mv-btn mv-close-diff", type: "button", onclick: () => { diffBox.replaceChildren(); } }, "× close diff"),
      renderDiff(d, { showAll: ui.showAll }, (on) => { ui.showAll = on; drawDiff(); }));
  }

  function drawReplay() {
    const r = model.get("replay") || {};
    if (!r.version) { replayBox.replaceChildren(); return; }
    replayBox.replaceChildren(h("h4", {}, `Outputs of ${r.version}`), renderCells((r.cells || []).map((c) => ({ ...c }))));
    for (const d of replayBox.querySelectorAll("details")) d.open = true;
  }

  const handlers = {
    "change:rows change:total change:count change:page change:sort_by change:sort_desc change:key_params change:metric_names change:can_export change:notebook": drawTable,
    "change:selected": () => { drawTable(); drawChart(); },
    "change:chart": drawChart,
    "change:details": drawDetails,
    "change:diff": drawDiff,
    "change:replay": drawReplay,
    "change:message": () => showMessage(model.get("message") || {}),
  };
  const bound = [];  // one listener per event name (not relying on space-separated names)
  for (const [evs, fn] of Object.entries(handlers)) for (const ev of evs.split(" ")) { model.on(ev, fn); bound.push([ev, fn]); }
  drawTable(); drawChart(); drawDetails(); drawDiff(); drawReplay(); showMessage(model.get("message") || {});
  return () => { for (const [ev, fn] of bound) model.off(ev, fn); clearTimeout(ui.typing); };
}

export default { render };
