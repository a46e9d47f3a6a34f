import { ArtifactView } from '../artifact';
import { cellText, renderPreview, tableSummary } from '../preview';
import { ApiError, IPreview, IVersionDetail, NbrippleApi } from '../request';

const HOSTILE = '<img src=x onerror="window.__pwned=1">';

function tablePreview(): IPreview {
  return {
    ref: 'scores@1',
    kind: 'table',
    size: 1000,
    preview: 'table',
    verified: true,
    columns: [
      { name: 'id', type: 'int64' },
      { name: HOSTILE, type: 'string' },
      { name: 'score', type: 'double' }
    ],
    columns_total: 3,
    rows: [
      [0, HOSTILE, 'NaN'],
      [1, null, 0.25],
      ['1152921504606846976', 'plain', true]
    ],
    num_rows: 1000,
    more: 997
  };
}

describe('the preview of a table', () => {
  it('renders the rows as an HTML table of text, names and types in the header', () => {
    const el = renderPreview(tablePreview());
    const table = el.querySelector('table.jp-nbripple-preview-table')!;
    const heads = Array.from(table.querySelectorAll('thead th'));
    expect(heads.map(th => th.querySelector('.jp-nbripple-column-name')!.textContent)).toEqual([
      'id',
      HOSTILE,
      'score'
    ]);
    expect(heads.map(th => th.querySelector('.jp-nbripple-column-type')!.textContent)).toEqual([
      'int64',
      'string',
      'double'
    ]);
    const rows = Array.from(table.querySelectorAll('tbody tr')).map(tr =>
      Array.from(tr.querySelectorAll('td')).map(td => td.textContent)
    );
    expect(rows).toEqual([
      ['0', HOSTILE, 'NaN'],
      ['1', 'null', '0.25'],
      ['1152921504606846976', 'plain', 'true']
    ]);
    // catalog text never becomes markup
    expect(el.querySelector('img')).toBeNull();
    expect(table.querySelectorAll('td.jp-nbripple-cell-null')).toHaveLength(1);
    expect(table.querySelectorAll('td.jp-nbripple-cell-number')).toHaveLength(3);
    expect(el.querySelector('.jp-nbripple-preview-summary')!.textContent).toBe(
      'first 3 of 1,000 rows · 3 columns'
    );
    expect(el.querySelector('.jp-nbripple-preview-note')).toBeNull();
  });

  it('says when it shows the first columns only, and when the blob was read unverified', () => {
    const preview = { ...tablePreview(), columns_total: 80, verified: false };
    expect(tableSummary(preview)).toBe('first 3 of 1,000 rows · first 3 of 80 columns');
    const all = { ...tablePreview(), num_rows: 3, more: 0 };
    expect(tableSummary(all)).toBe('3 rows · 3 columns');
    const el = renderPreview(preview);
    expect(el.querySelector('.jp-nbripple-preview-note')!.textContent).toContain('not checked');
  });

  it('writes each kind of cell', () => {
    expect(cellText(null)).toEqual({ text: 'null', cls: 'jp-nbripple-cell-null' });
    expect(cellText(2.5)).toEqual({ text: '2.5', cls: 'jp-nbripple-cell-number' });
    expect(cellText(false).text).toBe('false');
    expect(cellText('2024-01-01').cls).toBe('jp-nbripple-cell-text');
  });
});

describe('the preview of files, values and the rest', () => {
  it('lists a directory with sizes, links and how many more', () => {
    const el = renderPreview({
      ref: 'tree@1',
      kind: 'directory',
      size: 30,
      preview: 'files',
      files: [
        { path: 'README', size: 13 },
        { path: `part0/${HOSTILE}`, size: 2048 },
        { path: 'LATEST', target: 'README' }
      ],
      total: 32,
      more: 29
    });
    const items = Array.from(el.querySelectorAll('li.jp-nbripple-file')).map(li => [
      li.querySelector('.jp-nbripple-file-path')!.textContent,
      li.querySelector('.jp-nbripple-file-size')!.textContent
    ]);
    expect(items).toEqual([
      ['README', '13 B'],
      [`part0/${HOSTILE}`, '2.0 KiB'],
      ['LATEST', '→ README']
    ]);
    expect(el.querySelector('.jp-nbripple-more')!.textContent).toBe('and 29 more');
    expect(el.querySelector('.jp-nbripple-preview-summary')!.textContent).toBe('32 entries');
    expect(el.querySelector('img')).toBeNull();
  });

  it('shows a value as its repr and says why there is no preview', () => {
    const value = renderPreview({
      ref: 'settings@1',
      kind: 'value',
      size: 10,
      preview: 'value',
      repr: `{'html': '${HOSTILE}'}`
    });
    expect(value.querySelector('pre')!.textContent).toBe(`{'html': '${HOSTILE}'}`);
    expect(value.querySelector('img')).toBeNull();
    const none = renderPreview({
      ref: 'model@1',
      kind: 'object',
      size: 10,
      preview: 'none',
      message: 'no preview for kind object'
    });
    expect(none.textContent).toBe('no preview for kind object');
  });
});

describe('the Object tab', () => {
  const detail = {
    ref: 'scores@1',
    uri: 'nbripple://scores@1',
    name: 'scores',
    version: 1,
    partitions: {},
    time_partition: null,
    kind: 'table',
    python_type: 'pandas',
    hash: 'ab'.repeat(32),
    size: 1000,
    blob_uri: '/store/blobs/ab/abab',
    schema: [{ name: 'id', type: 'int64' }],
    num_rows: 1000,
    meta: {},
    execution_id: null,
    created_at: null,
    description: null,
    card_type: null,
    producer: null,
    consumers: [],
    snippet: 'nr.load("scores@1")'
  } as IVersionDetail;

  function viewWith(preview: (name: string, version: number, rows?: number) => Promise<IPreview>) {
    const api = {
      version: async () => detail,
      preview: jest.fn(preview)
    } as unknown as NbrippleApi;
    const sanitizer = { sanitize: (html: string) => html };
    return { view: new ArtifactView(api, sanitizer), api };
  }

  async function settled(el: HTMLElement): Promise<void> {
    for (let i = 0; i < 20 && el.dataset.state === 'loading'; i++) {
      await new Promise(resolve => setTimeout(resolve, 0));
    }
  }

  it('shows the first rows under the fields', async () => {
    const { view, api } = viewWith(async () => tablePreview());
    await view.open('scores', 1);
    view.select('Object');
    const holder = view.node.querySelector('.jp-nbripple-preview') as HTMLElement;
    await settled(holder);
    expect(holder.dataset.state).toBe('ready');
    expect(holder.querySelectorAll('tbody tr')).toHaveLength(3);
    expect(view.node.querySelector('.jp-nbripple-object dd')!.textContent).toBe(
      'nbripple://scores@1'
    );
    expect((api.preview as jest.Mock).mock.calls[0]).toEqual(['scores', 1, 20]);
    view.dispose();
  });

  it('shows a missing blob as one line in the tab', async () => {
    const message = 'blob abab of scores@1 is missing from the store at /store';
    const { view } = viewWith(async () => {
      throw new ApiError(404, 'NotFound', message);
    });
    await view.open('scores', 1);
    view.select('Object');
    const holder = view.node.querySelector('.jp-nbripple-preview') as HTMLElement;
    await settled(holder);
    expect(holder.dataset.state).toBe('error');
    expect(holder.querySelector('.jp-nbripple-error')!.textContent).toBe(message);
    // the rest of the tab is still there
    expect(view.node.querySelector('.jp-nbripple-object')).not.toBeNull();
    view.dispose();
  });
});
