import { baseName, durationText, parseFilters, parseRef, partitionText, sizeText } from '../format';
import { debounce, Latest } from '../latest';
import { affected } from '../live';
import { errorText } from '../executions';
import { resultRow } from '../search';
import { IVersion } from '../request';

describe('format', () => {
  it('parses key=value filters and names what is not one', () => {
    expect(parseFilters('blessed=true, site=lab  x')).toEqual({
      partitions: { blessed: 'true', site: 'lab' },
      invalid: ['x']
    });
    expect(parseFilters('=v').invalid).toEqual(['=v']);
    expect(parseFilters('a=b=c').partitions).toEqual({ a: 'b=c' });
  });

  it('writes partitions, sizes, durations, refs and names', () => {
    expect(partitionText({ blessed: 'true', site: 'lab' })).toBe('blessed=true · site=lab');
    expect(sizeText(512)).toBe('512 B');
    expect(sizeText(1536)).toBe('1.5 KiB');
    expect(sizeText(null)).toBe('');
    expect(durationText(0.25)).toBe('250 ms');
    expect(durationText(12.34)).toBe('12.3 s');
    expect(durationText(245)).toBe('4 min 05 s');
    expect(parseRef('blessed_model@2')).toEqual({ name: 'blessed_model', version: 2 });
    expect(parseRef('nbripple://m?blessed=true')).toBeNull();
    expect(baseName('/a/b/ops.ipynb')).toBe('ops.ipynb');
  });
});

describe('Latest', () => {
  it('drops a result that a newer run superseded and aborts the older request', async () => {
    const latest = new Latest();
    let release: (v: string) => void = () => undefined;
    let firstSignal: AbortSignal | null = null;
    const first = latest.run(
      signal =>
        new Promise<string>(resolve => {
          firstSignal = signal;
          release = resolve;
        })
    );
    const second = latest.run(async () => 'new');
    release('old');
    expect(await first).toBeUndefined();
    expect(await second).toBe('new');
    expect(firstSignal!.aborted).toBe(true);
  });

  it('rethrows the error of the latest run', async () => {
    const latest = new Latest();
    await expect(latest.run(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
  });
});

describe('debounce', () => {
  it('calls once, after the last call, with its arguments', () => {
    jest.useFakeTimers();
    const fn = jest.fn();
    const d = debounce(fn, 100);
    d(1);
    d(2);
    jest.advanceTimersByTime(99);
    expect(fn).not.toHaveBeenCalled();
    jest.advanceTimersByTime(1);
    expect(fn).toHaveBeenCalledTimes(1);
    expect(fn).toHaveBeenCalledWith(2);
    d(3);
    d.cancel();
    jest.advanceTimersByTime(200);
    expect(fn).toHaveBeenCalledTimes(1);
    jest.useRealTimers();
  });
});

describe('live', () => {
  it('maps each kind of change to the part of the panel it touches', () => {
    const parts = affected([
      { type: 'version', name: 'm', version: 1 },
      { type: 'firing' },
      { type: 'card' },
      { type: 'unknown' }
    ]);
    expect(Array.from(parts).sort()).toEqual(['cards', 'plans', 'versions']);
  });
});

describe('views', () => {
  const version = {
    ref: 'blessed_model@2',
    name: 'blessed_model',
    version: 2,
    kind: 'value',
    partitions: { blessed: 'true' },
    created_at: '2026-01-02T03:04:05+00:00',
    producer: {
      id: '5cbdea63bc954f33',
      kind: 'notebook',
      status: 'succeeded',
      label: null,
      notebook: '/x/product_development.ipynb',
      started_at: null,
      finished_at: null
    }
  } as unknown as IVersion;

  it('a result row shows name@version, kind, partitions and producer as text', () => {
    const opened: string[] = [];
    const row = resultRow({ ...version, ref: '<img src=x onerror=alert(1)>@1' }, v =>
      opened.push(v.ref)
    );
    expect(row.querySelector('img')).toBeNull();
    expect(row.querySelector('.jp-nbripple-ref')!.textContent).toBe(
      '<img src=x onerror=alert(1)>@1'
    );
    const good = resultRow(version, v => opened.push(v.ref));
    expect(good.querySelector('.jp-nbripple-partitions')!.textContent).toBe('blessed=true');
    expect(good.querySelector('.jp-nbripple-producer')!.textContent).toBe(
      'by product_development.ipynb (5cbdea63, succeeded)'
    );
    good.click();
    expect(opened).toEqual(['blessed_model@2']);
  });

  it('writes an execution error as one line', () => {
    expect(errorText({ ename: 'ValueError', evalue: 'bad' })).toBe('ValueError: bad');
    expect(errorText(null)).toBe('');
  });
});
