// The diff view. common.js (prepended) provides h, renderDiff.

function render({ model, el }) {
  el.classList.add("jupyter-mv-widget", "mv-diff-widget");
  const draw = () => {
    const msg = model.get("message") || {};
    el.replaceChildren(
      msg.text ? h("div", { class: `mv-message mv-msg-${msg.kind || "info"}` }, msg.text) : "",
      renderDiff(model.get("diff"), { showAll: model.get("show_all_params") }, (on) => {
        model.set("show_all_params", on);
        model.save_changes();
      }));
  };
  const events = ["change:diff", "change:show_all_params", "change:message"];
  for (const e of events) model.on(e, draw);
  draw();
  return () => { for (const e of events) model.off(e, draw); };
}

export default { render };
