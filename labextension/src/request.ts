/**
 * The one typed client of nbripple's REST API (`<base_url>nbripple/api/`).
 *
 * Every request goes through `ServerConnection.makeRequest`, which adds Jupyter's
 * token and XSRF header; the JSON shapes are those of `nbripple.service.wire`.
 * An error body `{"error", "message"}` becomes an `ApiError` carrying both.
 *
 *     const api = new NbrippleApi(ServerConnection.makeSettings());
 *     const found = await api.search({ text: 'model', partitions: { blessed: 'true' } });
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** The API's namespace under the server's base URL. */
export const API_PATH = 'nbripple/api';

// -- the shapes (nbripple.service.wire) ---------------------------------------------

export interface IExecutionSummary {
  id: string;
  kind: string;
  status: string;
  label: string | null;
  notebook: string | null;
  started_at: string | null;
  finished_at: string | null;
}

/** An execution in a listing (`GET executions`). */
export interface IExecutionRow extends IExecutionSummary {
  duration_s: number | null;
  /** What failed (`ename`, `evalue`, the cell), or null. */
  error: { ename?: string; evalue?: string; [key: string]: unknown } | null;
  /** What started it: `{type: 'manual', plan, ...}`, `{type: 'rerun', of}`, ... */
  trigger: Record<string, unknown> | null;
  parent_id: string | null;
}

/** Everything about one execution (`GET executions/{id}`). */
export interface IExecution extends IExecutionRow {
  parameters: Record<string, unknown>;
  requested: Record<string, unknown> | null;
  notebook_hash: string | null;
  output_notebook_hash: string | null;
  inputs: { ref: string; parameter: string | null }[];
  outputs: string[];
  chain_depth: number | null;
  cwd: string | null;
  pid: number | null;
  host: string | null;
  /** Where the executed notebook was kept, when the server says so. */
  output_notebook?: string | null;
}

/** A version with its producer (`GET search`, `GET resolve`). */
export interface IVersion {
  ref: string;
  uri: string;
  name: string;
  version: number;
  partitions: Record<string, string>;
  time_partition: string | null;
  kind: string;
  python_type: string | null;
  hash: string | null;
  size: number | null;
  blob_uri: string | null;
  schema: unknown;
  num_rows: number | null;
  meta: Record<string, unknown> | null;
  execution_id: string | null;
  created_at: string | null;
  description: string | null;
  card_type: string | null;
  card_excerpt?: string;
  card?: string | null;
  producer: IExecutionSummary | null;
}

/** `GET versions/{name}/{n}`: the version, its consumers and the line that loads it. */
export interface IVersionDetail extends IVersion {
  consumers: IExecutionSummary[];
  snippet: string;
}

export interface ICardRevision {
  ref: string;
  revision: number;
  card_type: string | null;
  created_at: string;
  markdown?: string;
}

/** `GET versions/{name}/{n}/card`: the card's Markdown, sanitized HTML and history. */
export interface ICardView {
  ref: string;
  card_type: string | null;
  markdown: string | null;
  html: string | null;
  history: ICardRevision[];
}

export interface ILineageNode {
  data: {
    id: string;
    label: string;
    type: 'version' | 'execution' | string;
    depth: number;
    [key: string]: unknown;
  };
  classes: string;
}

export interface ILineageEdge {
  data: { id: string; source: string; target: string; kind: string };
  classes: string;
}

/** `GET lineage`: the root, direction, depth and cytoscape.js elements. */
export interface ILineage {
  root: string;
  direction: string;
  depth: number | null;
  elements: { nodes: ILineageNode[]; edges: ILineageEdge[] };
}

/** A plan's summary (`GET plans`). */
export interface IPlan {
  name: string;
  state: 'active' | 'inactive';
  active: boolean;
  version: number | null;
  latest_version: number | null;
  notebook: string | null;
  trigger: string;
  schedule: string | null;
  timezone: string;
  last_fired: string | null;
  next_run: string | null;
  recent_results: string[];
  stopped_reason: string | null;
  max_chain_depth: number | null;
  description: string;
}

/** `GET watcher`: this server's own watcher and every live one of the home. */
export interface IWatcherState {
  local: Record<string, unknown> | null;
  live: Record<string, unknown>[];
}

/** One change the server committed (`GET live`). */
export interface ILiveItem {
  type: 'version' | 'execution' | 'firing' | 'plan' | 'card' | string;
  [key: string]: unknown;
}

export interface ILiveBatch {
  cursor: string;
  reset: boolean;
  items: ILiveItem[];
}

export interface ISearchQuery {
  text?: string;
  kind?: string;
  partitions?: Record<string, string>;
  allVersions?: boolean;
  limit?: number;
}

// -- errors -----------------------------------------------------------------------------

/** A refusal from the API: `error` is the server's class name, `message` what to do. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    message: string
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

// -- building queries -------------------------------------------------------------------

/** The query string of a search (`partition` repeated once per key). */
export function searchParams(query: ISearchQuery): URLSearchParams {
  const params = new URLSearchParams();
  const text = (query.text ?? '').trim();
  if (text) {
    params.set('text', text);
  }
  if (query.kind) {
    params.set('kind', query.kind);
  }
  for (const [key, value] of Object.entries(query.partitions ?? {})) {
    params.append('partition', `${key}=${value}`);
  }
  if (query.allVersions) {
    params.set('all_versions', 'true');
  }
  if (query.limit !== undefined) {
    params.set('limit', String(query.limit));
  }
  return params;
}

function versionPath(name: string, version: number): string {
  return `versions/${encodeURIComponent(name)}/${version}`;
}

// -- the client -------------------------------------------------------------------------

export class NbrippleApi {
  constructor(readonly settings: ServerConnection.ISettings = ServerConnection.makeSettings()) {}

  /** The URL of an endpoint (relative to the API's base path). */
  url(endpoint: string, params?: URLSearchParams): string {
    const base = URLExt.join(this.settings.baseUrl, API_PATH, endpoint);
    const query = params?.toString();
    return query ? `${base}?${query}` : base;
  }

  /** One request: the response's JSON, or an `ApiError`. */
  async request<T>(endpoint: string, init: RequestInit = {}, params?: URLSearchParams): Promise<T> {
    let response: Response;
    try {
      // 'no-cache', not Jupyter's default 'no-store': that one adds a cache-busting
      // query argument, which the API refuses (it takes only the arguments it knows);
      // the API answers with Cache-Control: no-store anyway.
      response = await ServerConnection.makeRequest(
        this.url(endpoint, params),
        { cache: 'no-cache', ...init },
        this.settings
      );
    } catch (error) {
      if ((error as Error)?.name === 'AbortError') {
        throw error;
      }
      throw new ServerConnection.NetworkError(error as TypeError);
    }
    const text = await response.text();
    let data: any = null;
    if (text.length > 0) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!response.ok) {
      throw new ApiError(
        response.status,
        data?.error ?? `HTTP${response.status}`,
        data?.message ?? (text || response.statusText)
      );
    }
    return data as T;
  }

  private post<T>(endpoint: string, body?: unknown): Promise<T> {
    return this.request<T>(endpoint, {
      method: 'POST',
      body: body === undefined ? '' : JSON.stringify(body)
    });
  }

  health(): Promise<{ status: string; home: string; version: string | null }> {
    return this.request('health');
  }

  search(query: ISearchQuery, signal?: AbortSignal): Promise<IVersion[]> {
    return this.request('search', { signal }, searchParams(query));
  }

  version(name: string, version: number, signal?: AbortSignal): Promise<IVersionDetail> {
    return this.request(versionPath(name, version), { signal });
  }

  resolve(ref: string): Promise<IVersion> {
    return this.request('resolve', {}, new URLSearchParams({ ref }));
  }

  card(name: string, version: number): Promise<ICardView> {
    return this.request(`${versionPath(name, version)}/card`);
  }

  saveCard(
    name: string,
    version: number,
    markdown: string,
    cardType?: string | null
  ): Promise<ICardView> {
    const body: Record<string, string> = { markdown };
    if (cardType) {
      body.card_type = cardType;
    }
    return this.request(`${versionPath(name, version)}/card`, {
      method: 'PUT',
      body: JSON.stringify(body)
    });
  }

  lineage(
    ref: string,
    depth: number | 'all' = 1,
    direction: 'both' | 'up' | 'down' = 'both',
    signal?: AbortSignal
  ): Promise<ILineage> {
    const params = new URLSearchParams({ ref, depth: String(depth), direction });
    return this.request('lineage', { signal }, params);
  }

  executions(limit = 50): Promise<IExecutionRow[]> {
    return this.request('executions', {}, new URLSearchParams({ limit: String(limit) }));
  }

  execution(id: string): Promise<IExecution> {
    return this.request(`executions/${encodeURIComponent(id)}`);
  }

  rerun(id: string): Promise<Record<string, unknown>> {
    return this.post(`executions/${encodeURIComponent(id)}/rerun`);
  }

  plans(): Promise<IPlan[]> {
    return this.request('plans');
  }

  setPlanActive(name: string, active: boolean): Promise<IPlan> {
    const action = active ? 'activate' : 'deactivate';
    return this.post(`plans/${encodeURIComponent(name)}/${action}`);
  }

  watcher(): Promise<IWatcherState> {
    return this.request('watcher');
  }

  setWatcherRunning(running: boolean): Promise<Record<string, unknown>> {
    return this.post(`watcher/${running ? 'start' : 'stop'}`);
  }

  /** Wait (up to `timeout` seconds) for changes after `cursor` (none: from now). */
  live(cursor: string | null, timeout = 25, signal?: AbortSignal): Promise<ILiveBatch> {
    const params = new URLSearchParams({ timeout: String(timeout) });
    if (cursor) {
      params.set('cursor', cursor);
    }
    return this.request('live', { signal }, params);
  }

  // -- launching: the forms, the runs, executed notebooks ---------------------------

  /** Plan `name`'s launch form: each parameter and input as a launch would set it now. */
  planForm(name: string): Promise<ILaunchForm> {
    return this.request(`plans/${encodeURIComponent(name)}/form`);
  }

  /** Launch plan `name` with `parameters` overriding its own (202: the queued run). */
  launchPlan(name: string, parameters: Record<string, unknown>): Promise<IExecutionRow> {
    return this.post(`plans/${encodeURIComponent(name)}/launch`, { parameters });
  }

  /** What relaunching execution `id` would use now (with `previous` values). */
  relaunchForm(id: string): Promise<ILaunchForm> {
    return this.request(`executions/${encodeURIComponent(id)}/form`);
  }

  /** Relaunch execution `id`: the notebook now, `parameters` over what it was given. */
  relaunch(id: string, parameters: Record<string, unknown>): Promise<IExecutionRow> {
    return this.post(`executions/${encodeURIComponent(id)}/relaunch`, { parameters });
  }

  /** The form of a run of notebook `path` (relative to the server's notebook root). */
  notebookForm(path: string): Promise<ILaunchForm> {
    return this.request('notebooks/form', {}, new URLSearchParams({ path }));
  }

  /** Run notebook `path` (relative to the server's notebook root) with `parameters`. */
  runNotebook(path: string, parameters: Record<string, unknown>): Promise<IExecutionRow> {
    return this.post('notebooks/run', { path, parameters });
  }

  /** Execution `id`'s executed notebook (`input`: the notebook it ran) as nbformat JSON. */
  executionNotebook(id: string, which: NotebookWhich = 'output'): Promise<Record<string, unknown>> {
    return this.request(
      `executions/${encodeURIComponent(id)}/notebook`,
      {},
      new URLSearchParams({ which })
    );
  }

  // -- the Object tab's preview ---------------------------------------------------------

  /** What a version holds: a table's first `rows` rows, a directory's files, a value. */
  preview(name: string, version: number, rows?: number, signal?: AbortSignal): Promise<IPreview> {
    const params = rows === undefined ? undefined : new URLSearchParams({ rows: String(rows) });
    return this.request(`${versionPath(name, version)}/preview`, { signal }, params);
  }
}

// -- the Object tab's preview (`GET versions/{name}/{n}/preview`) -------------------------

/** A table cell: JSON as the server wrote it (NaN, huge integers, bytes, dates as text). */
export type PreviewCell = string | number | boolean | null;

/** One entry of a directory (a file with its size, or a link with its target). */
export interface IPreviewFile {
  path: string;
  size?: number;
  target?: string;
}

export interface IPreview {
  ref: string;
  kind: string;
  size: number | null;
  /** Which of the fields below are there ('none': only `message`). */
  preview: 'table' | 'files' | 'value' | 'none';
  /** Whether the blob was checked against its hash (large tables are read in part). */
  verified?: boolean;
  message?: string;
  // table
  columns?: { name: string; type: string }[];
  columns_total?: number;
  rows?: PreviewCell[][];
  num_rows?: number;
  // files
  files?: IPreviewFile[];
  total?: number;
  /** Rows or entries not shown. */
  more?: number;
  // value
  repr?: string;
  python_type?: string | null;
}

// -- launching: the shapes of the forms (nbripple.service.wire) ---------------------

/** A version a form offers for an input. */
export interface IFormChoice {
  ref: string;
  version: number;
  partitions: Record<string, string>;
  time_partition: string | null;
  created_at: string | null;
}

/**
 * One parameter of a launch form. `value` is what the run would use now: a parameter's
 * value (null when its default is no literal), an input's resolved ref (null: nothing
 * matches, `problem` says why). `source`: `notebook`, `plan`, `trigger` or `execution`.
 */
export interface IFormField {
  name: string;
  /** integer, number, string, boolean, array, object, artifact, or null (no literal). */
  type: string | null;
  input: boolean;
  /** The notebook's default, as written. */
  declared: string;
  source: string;
  plan_value: unknown;
  value: unknown;
  /** A relaunch form: what the original execution ran with. */
  previous?: unknown;
  // inputs only
  query?: string | null;
  optional?: boolean;
  resolved?: IVersion | null;
  problem?: string | null;
  artifact?: string | null;
  choices?: IFormChoice[];
}

/** `GET plans/{name}/form`, `GET executions/{id}/form`, `GET notebooks/form`. */
export interface ILaunchForm {
  notebook: string;
  kernel_name: string;
  parameters: IFormField[];
  inputs: IFormField[];
  /** A plan's form. */
  plan?: string;
  version?: number;
  active?: boolean;
  /** A relaunch form: the execution relaunched. */
  execution?: IExecutionSummary;
  /** A notebook's form: the path asked for. */
  path?: string;
}

export type NotebookWhich = 'output' | 'input';
