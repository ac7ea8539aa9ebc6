// The diff widget's ES module (anywidget `_esm`, bundled to jupyter_mv/widgets/static/diff.js).
import { h, renderDiff } from '../render';
import { sanitizedOutput } from '../render/sanitize';
import type { Diff, DiffWidgetState } from '../schema.generated';
import { filled, IModel } from './model';

function render({ model, el }: { model: IModel<DiffWidgetState>; el: HTMLElement }): () => void {
  el.classList.add('jupyter-mv-widget', 'mv-diff-widget');
  const draw = () => {
    const msg = model.get('message') || {};
    const d = filled<Diff>(model.get('diff'), 'a');
    el.replaceChildren(
      msg.text ? h('div', { class: `mv-message mv-msg-${msg.kind || 'info'}` }, msg.text) : '',
      d ? renderDiff(d, {
        renderOutput: sanitizedOutput,
        showAll: model.get('show_all_params'),
        onShowAll: on => {
          model.set('show_all_params', on);
          model.save_changes();
        }
      }) : ''
    );
  };
  const events = ['change:diff', 'change:show_all_params', 'change:message'];
  for (const e of events) {
    model.on(e, draw);
  }
  draw();
  return () => {
    for (const e of events) {
      model.off(e, draw);
    }
  };
}

export default { render };
