// jupyter_mv's one rendering layer: every view of versions, diffs and outputs, for the lab extension
// (sidebar, diff tab) and the notebook widgets (bundled from ../widgets/*.ts into
// jupyter_mv/widgets/static/). DOM only: no JupyterLab import here (the lab passes its rendermime
// output renderer in), so the widget bundle stays small and runs in any anywidget host.
export * from './dom';
export * from './format';
export * from './outputs';
export * from './analysis';
export * from './diff';
export * from './details';
export * from './history';
export * from './chart';
export * from './graph';
export * from './varhistory';
export type * from './types';
