// REST client for the jupyter_mv server extension (jupyter_mv/server/openapi.yaml).
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export interface IVersion {
  id: string;
  name: string;
  message: string;
  created: string;
  tags: string[];
  params: Record<string, unknown>;
  metrics: Record<string, number>;
  variables: string[];
  bytes: number;
  new_bytes?: number;
  parent: string | null;
  kind?: string;
  notebook?: string;
  /** 'local': made in this store; anything else ('imported', pulled…) is untrusted. */
  origin?: string;
}

/** A version made in this store (its recorded outputs are the user's own). A server too old to
 * say is treated as not: recorded outputs are then untrusted. */
export function madeHere(v: { origin?: string }): boolean {
  return v.origin === 'local';
}

export interface IOutput {
  output_type: string;
  [key: string]: unknown;
}

export interface IStoredCell {
  cell_id: string | null;
  execution_count: number | null;
  source: string;
  outputs: IOutput[];
}

export interface IVariableInfo {
  name: string;
  type: string;
  codec: string;
  bytes: number;
  summary: Record<string, unknown>;
}

export interface IVersionDetails extends Omit<IVersion, 'variables'> {
  variables: IVariableInfo[];
  cells: IStoredCell[];
  environment: Record<string, unknown>;
}

export interface ICellDiff {
  status: 'same' | 'changed' | 'added' | 'removed';
  cell_id: string | null;
  a_index: number | null;
  b_index: number | null;
  a_source: string | null;
  b_source: string | null;
  source_diff: string[];
  outputs_changed: boolean;
  outputs_diff: string[];
}

export interface IDictDiff {
  added: Record<string, unknown>;
  removed: Record<string, unknown>;
  changed: Record<string, unknown>;
  same: Record<string, unknown>;
}

export interface IVarDiff {
  added: IVariableInfo[];
  removed: IVariableInfo[];
  changed: { name: string; old: IVariableInfo; new: IVariableInfo; changes: Record<string, unknown>; analysis?: Record<string, any> }[];
  same: string[];
}

export interface IDiff {
  schema: number;
  a: string;
  b: string;
  notebook: string;
  params: IDictDiff;
  metrics: IDictDiff;
  variables: IVarDiff;
  cells: ICellDiff[];
}

/** An error answered by the server: its status and {"message"}. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

async function request<T>(endpoint: string, init: RequestInit = {}, query: Record<string, string> = {}): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const qs = new URLSearchParams(query).toString();
  const url = URLExt.join(settings.baseUrl, 'jupyter-mv', 'api', endpoint) + (qs ? `?${qs}` : '');
  const response = await ServerConnection.makeRequest(url, init, settings);
  const text = await response.text();
  let data: any = {};
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = { message: text };
  }
  if (!response.ok) {
    throw new ApiError(response.status, data.message || response.statusText);
  }
  return data as T;
}

/** The server writes non-finite numbers as the strings "NaN", "Infinity", "-Infinity" (JSON has no
 * literal for them; jupyter_mv/jsondata.py); metrics are numbers, so they are read back as numbers. */
const NONFINITE: Record<string, number> = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity };

export function toNumber(v: unknown): unknown {
  return typeof v === 'string' && v in NONFINITE ? NONFINITE[v] : v;
}

function numbers<T>(m: Record<string, T> | undefined): Record<string, T> {
  const out: Record<string, any> = {};
  for (const [k, v] of Object.entries(m || {})) {
    out[k] = v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).map(([a, b]) => [a, toNumber(b)]))  // {old, new, delta}
      : toNumber(v);
  }
  return out;
}

function withNumbers<V extends { metrics: Record<string, any> }>(v: V): V {
  return { ...v, metrics: numbers(v.metrics) };
}

export async function listVersions(notebook: string): Promise<{ versions: IVersion[]; key: string }> {
  const r = await request<{ versions: IVersion[]; key: string }>('versions', {}, { notebook });
  return { ...r, versions: (r.versions || []).map(withNumbers) };
}

export async function versionDetails(notebook: string, id: string): Promise<IVersionDetails> {
  return withNumbers(await request<IVersionDetails>(`versions/${encodeURIComponent(id)}`, {}, { notebook }));
}

export async function diff(notebook: string, a: string, b: string): Promise<IDiff> {
  const d = await request<IDiff>('diff', {}, { notebook, a, b });
  const m = d.metrics;
  return m ? { ...d, metrics: { added: numbers(m.added), removed: numbers(m.removed), changed: numbers(m.changed), same: numbers(m.same) } } : d;
}

export function tag(notebook: string, version: string, tagName: string, remove = false): Promise<{ version: IVersion }> {
  return request('tags', { method: 'POST', body: JSON.stringify({ notebook, version, tag: tagName, remove }) });
}

export function rename(oldPath: string, newPath: string): Promise<{ renamed: boolean }> {
  return request('rename', { method: 'POST', body: JSON.stringify({ old: oldPath, new: newPath }) });
}

export function serverVersion(): Promise<{ name: string; version: string; api: number }> {
  return request('version');
}
