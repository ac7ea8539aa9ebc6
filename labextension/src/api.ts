// REST client for the jupyter_mv server extension (jupyter_mv/server/openapi.yaml).
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

// The JSON shapes are generated from jupyter_mv/schemas (render/types.ts): no hand-written copies.
import type { IDiff, IHistoryPage, IRenameReply, IServerVersion, ITagReply, IVariableHistory, IVersionDetails } from './render/types';
export type * from './render/types';
// remotes (remote.ts): generated from jupyter_mv/schemas/remote-*.schema.json
import type { RemoteStatus as IRemoteStatus, RemoteTransfer as IRemoteTransfer } from './schema.generated';
export type { IRemoteStatus, IRemoteTransfer };

/** A version made in this store (its recorded outputs are the user's own). A server too old to
 * say is treated as not: recorded outputs are then untrusted. */
export function madeHere(v: { origin?: string }): boolean {
  return v.origin === 'local';
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

export async function listVersions(notebook: string): Promise<IHistoryPage> {
  const r = await request<IHistoryPage>('versions', {}, { notebook });
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

/** Where a variable (or metric) changed among the notebook's versions, and its numeric values
 * (GET variable-history; api.variable_history). Values keep "NaN"/"Infinity" as strings: formatValue shows them. */
export function variableHistory(notebook: string, name: string, kind: 'variable' | 'metric'): Promise<IVariableHistory> {
  return request<IVariableHistory>('variable-history', {}, { notebook, name, kind });
}

export function tag(notebook: string, version: string, tagName: string, remove = false): Promise<ITagReply> {
  return request('tags', { method: 'POST', body: JSON.stringify({ notebook, version, tag: tagName, remove }) });
}

export function rename(oldPath: string, newPath: string): Promise<IRenameReply> {
  return request('rename', { method: 'POST', body: JSON.stringify({ old: oldPath, new: newPath }) });
}

export function serverVersion(): Promise<IServerVersion> {
  return request('version');
}

/** The store's default remote and which of the notebook's versions it holds (GET remote: read from the
 * store, the remote itself is not asked, so it is cheap on every refresh). */
export function remoteStatus(notebook: string, transfer?: string): Promise<IRemoteStatus> {
  return request<IRemoteStatus>('remote', {}, transfer ? { notebook, transfer } : { notebook });
}

/** Push versions to the default remote (POST push; the reply comes when the transfer is done). While it
 * runs, `remoteStatus(notebook, transfer)` reports its progress. */
export function push(notebook: string, versions: string[], transfer?: string): Promise<IRemoteTransfer> {
  return request('push', { method: 'POST', body: JSON.stringify({ notebook, versions, transfer }) });
}

/** Pull the notebook's versions the default remote holds and this store lacks (POST pull). */
export function pull(notebook: string, transfer?: string): Promise<IRemoteTransfer> {
  return request('pull', { method: 'POST', body: JSON.stringify({ notebook, transfer }) });
}
