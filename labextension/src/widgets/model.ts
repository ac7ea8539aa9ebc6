// The part of anywidget's model the widgets use, typed by the widget's state schema
// (jupyter_mv/schemas/*-widget.schema.json -> ../schema.generated.ts).
export interface IModel<S> {
  get<K extends keyof S>(key: K): S[K];
  set<K extends keyof S>(key: K, value: S[K]): void;
  save_changes(): void;
  on(event: string, fn: () => void): void;
  off(event: string, fn: () => void): void;
}

/** `{}` (nothing yet) or the full object: the state schemas allow both. */
export function filled<T extends object>(v: T | Record<string, never> | undefined, key: keyof T): T | null {
  return v && key in v ? (v as T) : null;
}
