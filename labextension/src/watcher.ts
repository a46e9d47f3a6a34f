/**
 * The watcher: whether one serves this catalog (this server's own, and any other live
 * one of the home), with start/stop for the server's own.
 */
import { Notification } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { button, h, replaceChildren } from './dom';
import { IWatcherState, NbrippleApi } from './request';

/** One line about the watcher state. */
export function watcherSummary(state: IWatcherState): string {
  const local =
    state.local && state.local.running !== false
      ? 'this server runs a watcher'
      : 'this server runs no watcher';
  const others = state.live.length;
  return `${local}; ${others} live watcher${others === 1 ? '' : 's'} on this home`;
}

export class WatcherView extends Widget {
  constructor(private readonly _api: NbrippleApi) {
    super();
    this.addClass('jp-nbripple-watcher');
    this._body = h('div', {});
    this.node.append(this._body);
  }

  async refresh(): Promise<void> {
    try {
      this.render(await this._api.watcher());
    } catch (error) {
      replaceChildren(
        this._body,
        h('div', { class: 'jp-nbripple-error' }, (error as Error).message)
      );
    }
  }

  render(state: IWatcherState): void {
    const running = !!state.local && state.local.running !== false;
    this.node.dataset.running = String(running);
    replaceChildren(
      this._body,
      h('div', { class: 'jp-nbripple-status' }, watcherSummary(state)),
      button(
        running ? 'Stop the watcher' : 'Start a watcher',
        () => void this.setRunning(!running),
        {
          class: 'jp-nbripple-watcher-toggle'
        }
      ),
      ...state.live.map(w =>
        h('pre', { class: 'jp-nbripple-meta-json' }, JSON.stringify(w, null, 2))
      )
    );
  }

  async setRunning(running: boolean): Promise<void> {
    try {
      await this._api.setWatcherRunning(running);
    } catch (error) {
      Notification.error(
        `Could not ${running ? 'start' : 'stop'} the watcher: ${(error as Error).message}`
      );
    }
    await this.refresh();
  }

  private _body: HTMLElement;
}
