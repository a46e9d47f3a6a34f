import { triggerText } from '../executions';
import { notebookCopyPath, openExecutionNotebook, refAt, RUNS_DIR } from '../notebooks';
import { NbrippleApi } from '../request';

describe('refAt', () => {
  it('takes a selection as it is, without quotes around it', () => {
    const text = 'model = nr.load("blessed_model@3")';
    const start = text.indexOf('"');
    expect(refAt(text, start, text.length - 1)).toBe('blessed_model@3');
    expect(refAt('x = "nbripple://m?blessed=true"', 4, 31)).toBe('nbripple://m?blessed=true');
    expect(refAt('two words', 0, 9)).toBeNull();
  });

  it('finds a pinned ref or a URI around the cursor, and no bare word', () => {
    const text = "model = 'nbripple://blessed_model?blessed=true'  # or blessed_model@2.";
    expect(refAt(text, text.indexOf('blessed_model?') + 3)).toBe(
      'nbripple://blessed_model?blessed=true'
    );
    expect(refAt(text, text.indexOf('@2'))).toBe('blessed_model@2');
    expect(refAt(text, 2)).toBeNull(); // "model"
    expect(refAt('', 0)).toBeNull();
  });
});

describe('executed notebooks', () => {
  it('are copied to nbripple-runs/<id>.ipynb, never outside it', () => {
    expect(notebookCopyPath('1a2b')).toBe('nbripple-runs/1a2b.ipynb');
    expect(notebookCopyPath('1a2b', 'input')).toBe('nbripple-runs/1a2b-input.ipynb');
    expect(() => notebookCopyPath('../x')).toThrow(/not an execution id/);
  });

  it('come from the API, are saved through the contents API, then opened', async () => {
    const notebook = { cells: [], nbformat: 4, nbformat_minor: 5, metadata: {} };
    const api = { executionNotebook: jest.fn(async () => notebook) } as unknown as NbrippleApi;
    const saved: [string, unknown][] = [];
    const contents = {
      save: jest.fn(async (path: string, model: unknown) => saved.push([path, model]))
    };
    const open = jest.fn(async () => undefined);
    const path = await openExecutionNotebook({ api, contents: contents as any, open }, 'e1');
    expect(path).toBe('nbripple-runs/e1.ipynb');
    expect(saved).toEqual([
      [RUNS_DIR, { type: 'directory' }],
      ['nbripple-runs/e1.ipynb', { type: 'notebook', format: 'json', content: notebook }]
    ]);
    expect(open).toHaveBeenCalledWith('nbripple-runs/e1.ipynb');
  });

  it('are only revealed when a tab shows them already', async () => {
    const api = { executionNotebook: jest.fn() } as unknown as NbrippleApi;
    const contents = { save: jest.fn() };
    const open = jest.fn(async () => undefined);
    await openExecutionNotebook(
      { api, contents: contents as any, open, isOpen: () => true },
      'e1',
      'input'
    );
    expect(contents.save).not.toHaveBeenCalled();
    expect(open).toHaveBeenCalledWith('nbripple-runs/e1-input.ipynb');
  });
});

describe('triggerText', () => {
  it('says what started a run in a few words', () => {
    expect(triggerText({ type: 'manual', plan: 'predict', plan_version: 1, by: 'api' })).toBe(
      'manual · plan predict'
    );
    expect(triggerText({ type: 'artifact', plan: 'ops', artifact: 'm', version: 2 })).toBe(
      'artifact · plan ops · by m@2'
    );
    expect(triggerText({ type: 'relaunch', of: '0123456789abcdef' })).toBe(
      'relaunch · of 01234567'
    );
    expect(triggerText(null, 'interactive')).toBe('interactive');
  });
});
