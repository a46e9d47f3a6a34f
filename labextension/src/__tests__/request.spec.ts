import { ServerConnection } from '@jupyterlab/services';

import { ApiError, NbrippleApi, searchParams } from '../request';

/** What ServerConnection builds (jsdom has no fetch API): the URL, init and headers. */
class FakeRequest {
  constructor(
    readonly url: string,
    readonly init: RequestInit = {}
  ) {}
  readonly headers = {
    values: new Map<string, string>(),
    has(name: string) {
      return this.values.has(name.toLowerCase());
    },
    set(name: string, value: string) {
      this.values.set(name.toLowerCase(), value);
    },
    append(name: string, value: string) {
      this.values.set(name.toLowerCase(), value);
    }
  };
}

/** A client whose fetch records each call and answers `reply`. */
function client(reply: { status?: number; body?: unknown }) {
  const calls: { url: string; init: RequestInit }[] = [];
  const fetch = jest.fn(async (request: FakeRequest) => {
    calls.push({ url: request.url, init: request.init });
    return {
      ok: (reply.status ?? 200) < 400,
      status: reply.status ?? 200,
      statusText: 'status',
      text: async () => (reply.body === undefined ? '' : JSON.stringify(reply.body))
    } as unknown as Response;
  });
  const settings = ServerConnection.makeSettings({
    baseUrl: 'http://lab.test/base/',
    fetch: fetch as unknown as typeof window.fetch,
    Request: FakeRequest as unknown as typeof Request
  });
  return { api: new NbrippleApi(settings), calls };
}

describe('searchParams', () => {
  it('repeats partition once per key and leaves empty fields out', () => {
    const params = searchParams({
      text: '  model ',
      partitions: { blessed: 'true', site: 'lab' },
      allVersions: true
    });
    expect(params.getAll('partition')).toEqual(['blessed=true', 'site=lab']);
    expect(params.get('text')).toBe('model');
    expect(params.get('all_versions')).toBe('true');
    expect(params.has('kind')).toBe(false);
  });

  it('sends nothing for an empty query', () => {
    expect(searchParams({ text: '', partitions: {} }).toString()).toBe('');
  });
});

describe('NbrippleApi', () => {
  it('asks under <base_url>nbripple/api/ with no cache-busting argument', async () => {
    const { api, calls } = client({ body: [] });
    await api.search({ text: 'model', partitions: { blessed: 'true' } });
    expect(calls).toHaveLength(1);
    expect(calls[0].url).toBe(
      'http://lab.test/base/nbripple/api/search?text=model&partition=blessed%3Dtrue'
    );
  });

  it('escapes artifact names in paths', async () => {
    const { api, calls } = client({ body: {} });
    await api.version('odd/name', 3);
    expect(calls[0].url).toBe('http://lab.test/base/nbripple/api/versions/odd%2Fname/3');
  });

  it('posts plan toggles and puts cards as JSON', async () => {
    const { api, calls } = client({ body: {} });
    await api.setPlanActive('trigger_ops', false);
    await api.saveCard('m', 1, '# hi', 'model');
    expect(calls[0].url).toMatch(/plans\/trigger_ops\/deactivate$/);
    expect(calls[0].init.method).toBe('POST');
    expect(calls[1].init.method).toBe('PUT');
    expect(JSON.parse(String(calls[1].init.body))).toEqual({
      markdown: '# hi',
      card_type: 'model'
    });
  });

  it('turns an error body into an ApiError with the class name and message', async () => {
    const { api } = client({
      status: 404,
      body: { error: 'ArtifactNotFound', message: 'no artifact named nope' }
    });
    const failure = api.version('nope', 1);
    await expect(failure).rejects.toBeInstanceOf(ApiError);
    await expect(failure).rejects.toMatchObject({
      status: 404,
      error: 'ArtifactNotFound',
      message: 'no artifact named nope'
    });
  });

  it('long-polls live from a cursor', async () => {
    const { api, calls } = client({ body: { cursor: 'f:3', reset: false, items: [] } });
    const batch = await api.live('f:2', 10);
    expect(batch.cursor).toBe('f:3');
    expect(calls[0].url).toBe('http://lab.test/base/nbripple/api/live?timeout=10&cursor=f%3A2');
  });
});

describe('NbrippleApi: launching', () => {
  it('asks for the three forms and escapes names, ids and paths', async () => {
    const { api, calls } = client({ body: { parameters: [], inputs: [] } });
    await api.planForm('odd/plan');
    await api.relaunchForm('ab12');
    await api.notebookForm('reports/daily run.ipynb');
    expect(calls.map(c => c.url)).toEqual([
      'http://lab.test/base/nbripple/api/plans/odd%2Fplan/form',
      'http://lab.test/base/nbripple/api/executions/ab12/form',
      'http://lab.test/base/nbripple/api/notebooks/form?path=reports%2Fdaily+run.ipynb'
    ]);
  });

  it('posts launches, relaunches and notebook runs with their parameters', async () => {
    const { api, calls } = client({ status: 202, body: { id: 'e1', status: 'queued' } });
    await api.launchPlan('predict', { scale: 3 });
    await api.relaunch('e0', { model: 'blessed_model@1' });
    await api.runNotebook('a/b.ipynb', {});
    expect(
      calls.map(c => [c.url.replace('http://lab.test/base/nbripple/api/', ''), c.init.method])
    ).toEqual([
      ['plans/predict/launch', 'POST'],
      ['executions/e0/relaunch', 'POST'],
      ['notebooks/run', 'POST']
    ]);
    expect(calls.map(c => JSON.parse(String(c.init.body)))).toEqual([
      { parameters: { scale: 3 } },
      { parameters: { model: 'blessed_model@1' } },
      { path: 'a/b.ipynb', parameters: {} }
    ]);
  });

  it('fetches an executed notebook, or the one it ran', async () => {
    const { api, calls } = client({ body: { cells: [], nbformat: 4 } });
    expect(await api.executionNotebook('e1')).toEqual({ cells: [], nbformat: 4 });
    await api.executionNotebook('e1', 'input');
    expect(calls.map(c => c.url)).toEqual([
      'http://lab.test/base/nbripple/api/executions/e1/notebook?which=output',
      'http://lab.test/base/nbripple/api/executions/e1/notebook?which=input'
    ]);
  });
});
