/**
 * Only the latest request renders: each `run` aborts the one before it, and a result
 * that arrives after a newer call started is dropped (returns `undefined`).
 *
 *     const latest = new Latest();
 *     const rows = await latest.run(signal => api.search(query, signal));
 *     if (rows !== undefined) { render(rows); }
 */
export class Latest {
  private _controller: AbortController | null = null;
  private _generation = 0;

  /** Run `call`; resolve to its result, or `undefined` if a newer run superseded it. */
  async run<T>(call: (signal: AbortSignal) => Promise<T>): Promise<T | undefined> {
    this._controller?.abort();
    const controller = new AbortController();
    this._controller = controller;
    const generation = ++this._generation;
    try {
      const result = await call(controller.signal);
      return generation === this._generation ? result : undefined;
    } catch (error) {
      if (generation !== this._generation || controller.signal.aborted) {
        return undefined;
      }
      throw error;
    }
  }

  /** Abort whatever runs. */
  cancel(): void {
    this._generation++;
    this._controller?.abort();
    this._controller = null;
  }
}

/** `fn` called once `wait` ms after the last call (its arguments the last ones). */
export function debounce<A extends unknown[]>(
  fn: (...args: A) => void,
  wait: number
): ((...args: A) => void) & { cancel(): void } {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const debounced = (...args: A) => {
    if (timer !== null) {
      clearTimeout(timer);
    }
    timer = setTimeout(() => {
      timer = null;
      fn(...args);
    }, wait);
  };
  debounced.cancel = () => {
    if (timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
  };
  return debounced;
}
