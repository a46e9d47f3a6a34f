/**
 * The live loop: a long poll on `GET live` that hands each batch of changes to the
 * panel (which refreshes only what they affect). No timer polls the lists.
 *
 * A failed poll waits (1 s, doubling to 30 s) before the next; a 404 means the server
 * has no live endpoint, and the loop stops.
 */
import { ApiError, ILiveItem, NbrippleApi } from './request';

export interface ILiveHandler {
  /** Changes committed since the last batch. */
  changed(items: ILiveItem[]): void;
  /** The server lost track of the cursor (it restarted): reload everything. */
  reset(): void;
}

/** Which of the panel's parts a batch touches. */
export function affected(items: ILiveItem[]): Set<'versions' | 'executions' | 'plans' | 'cards'> {
  const parts = new Set<'versions' | 'executions' | 'plans' | 'cards'>();
  for (const item of items) {
    switch (item.type) {
      case 'version':
        parts.add('versions');
        break;
      case 'execution':
        parts.add('executions');
        break;
      case 'plan':
      case 'firing':
        parts.add('plans');
        break;
      case 'card':
        parts.add('cards');
        break;
    }
  }
  return parts;
}

export class LiveLoop {
  constructor(
    private readonly _api: NbrippleApi,
    private readonly _handler: ILiveHandler,
    private readonly _timeout = 25
  ) {}

  get running(): boolean {
    return this._controller !== null;
  }

  start(): void {
    if (this._controller) {
      return;
    }
    this._controller = new AbortController();
    void this._loop(this._controller.signal);
  }

  stop(): void {
    this._controller?.abort();
    this._controller = null;
  }

  private async _loop(signal: AbortSignal): Promise<void> {
    let cursor: string | null = null;
    let wait = 1000;
    while (!signal.aborted) {
      try {
        const batch = await this._api.live(cursor, this._timeout, signal);
        wait = 1000;
        if (batch.reset && cursor !== null) {
          this._handler.reset();
        } else if (batch.items.length) {
          this._handler.changed(batch.items);
        }
        cursor = batch.cursor;
      } catch (error) {
        if (signal.aborted) {
          return;
        }
        if (error instanceof ApiError && error.status === 404) {
          console.warn(
            'nbripple: this server has no live endpoint; the panel will not update by itself'
          );
          this._controller = null;
          return;
        }
        await new Promise(resolve => setTimeout(resolve, wait));
        wait = Math.min(wait * 2, 30000);
      }
    }
  }

  private _controller: AbortController | null = null;
}
