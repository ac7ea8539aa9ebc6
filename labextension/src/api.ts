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
  changed: { name: string; old: IVariableInfo; new: IVariableInfo; changes: Record<string, unknown> }[];
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

export function listVersions(notebook: string): Promise<{ versions: IVersion[]; key: string }> {
  return request('versions', {}, { notebook });
}

export function versionDetails(notebook: string, id: string): Promise<IVersionDetails> {
  return request(`versions/${encodeURIComponent(id)}`, {}, { notebook });
}

export function diff(notebook: string, a: string, b: string): Promise<IDiff> {
  return request('diff', {}, { notebook, a, b });
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
