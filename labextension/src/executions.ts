/**
 * The executions: id, notebook, status, trigger, duration and error, newest first;
 * one opens to its inputs and outputs (as links), its parameters and Rerun.
 */
import { Notification } from '@jupyterlab/apputils';
import { Signal, ISignal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { button, h, replaceChildren } from './dom';
import { fields } from './artifact';
import { baseName, durationText, shortId, timeText } from './format';
import { Latest } from './latest';
import { IExecution, IExecutionRow, NbrippleApi } from './request';

/** An execution's error as one line ('' when it did not fail). */
export function errorText(error: IExecutionRow['error']): string {
  if (!error) {
    return '';
  }
  return [error.ename, error.evalue].filter(Boolean).join(': ') || JSON.stringify(error);
}

export function executionItem(row: IExecutionRow, onOpen: (id: string) => void): HTMLElement {
  const item = h(
    'li',
    { class: 'jp-nbripple-execution', 'data-id': row.id, 'data-status': row.status, tabindex: '0' },
    h(
      'div',
      { class: 'jp-nbripple-result-head' },
      h('span', { class: 'jp-nbripple-ref', title: row.notebook ?? '' }, baseName(row.notebook) || row.label || row.kind),
      h('span', { class: `jp-nbripple-status-badge jp-nbripple-${row.status}` }, row.status)
    ),
    h(
      'div',
      { class: 'jp-nbripple-meta' },
      h('span', {}, shortId(row.id)),
      h('span', {}, row.trigger ?? row.kind),
      h('span', {}, timeText(row.started_at)),
      h('span', {}, durationText(row.duration_s))
    ),
    row.error ? h('div', { class: 'jp-nbripple-error' }, errorText(row.error)) : null
  );
  item.addEventListener('click', () => onOpen(row.id));
  return item;
}

export class ExecutionsView extends Widget {
  constructor(private readonly _api: NbrippleApi) {
    super();
    this.addClass('jp-nbripple-executions');
    this._status = h('div', { class: 'jp-nbripple-status', role: 'status' });
    this._detail = h('div', { class: 'jp-nbripple-execution-detail' });
    this._list = h('ul', { class: 'jp-nbripple-results' });
    this.node.append(this._detail, this._status, this._list);
  }

  /** A version ref was clicked (an input or an output). */
  get versionOpened(): ISignal<this, string> {
    return this._versionOpened;
  }

  /** The executed notebook was asked for (its path, as the server gives it). */
  get notebookOpened(): ISignal<this, string> {
    return this._notebookOpened;
  }

  async refresh(): Promise<void> {
    try {
      const rows = await this._latest.run(() => this._api.executions(50));
      if (rows !== undefined) {
        replaceChildren(this._list, ...rows.map(r => executionItem(r, id => void this.open(id))));
        this._status.textContent = rows.length ? '' : 'No executions yet.';
        this.node.dataset.state = 'ready';
      }
      if (this._openId) {
        await this.open(this._openId);
      }
    } catch (error) {
      this._status.textContent = (error as Error).message;
    }
  }

  /** Show one execution's details above the list. */
  async open(id: string): Promise<void> {
    this._openId = id;
    try {
      const execution = await this._api.execution(id);
      if (this._openId === id) {
        replaceChildren(this._detail, this.detail(execution));
      }
    } catch (error) {
      replaceChildren(this._detail, h('div', { class: 'jp-nbripple-error' }, (error as Error).message));
    }
  }

  detail(execution: IExecution): HTMLElement {
    const refLink = (ref: string) => {
      const link = h('a', { href: '#', class: 'jp-nbripple-link', 'data-ref': ref }, ref);
      link.addEventListener('click', event => {
        event.preventDefault();
        this._versionOpened.emit(ref);
      });
      return h('li', {}, link);
    };
    const actions = h(
      'div',
      { class: 'jp-nbripple-row' },
      button('Close', () => {
        this._openId = null;
        replaceChildren(this._detail);
      }),
      execution.notebook ? button('Rerun', () => void this.rerun(execution.id), { class: 'jp-nbripple-rerun' }) : null,
      execution.output_notebook
        ? button('Open executed notebook', () => this._notebookOpened.emit(execution.output_notebook as string))
        : null
    );
    return h(
      'div',
      { class: 'jp-nbripple-execution-card', 'data-id': execution.id },
      h('div', { class: 'jp-nbripple-subtitle' }, `${execution.notebook ?? execution.label ?? execution.kind}`),
      fields([
        ['Id', execution.id],
        ['Status', execution.status],
        ['Trigger', execution.trigger],
        ['Started', timeText(execution.started_at)],
        ['Duration', durationText(execution.duration_s)],
        ['Error', errorText(execution.error)],
        ['Inputs', execution.inputs.length ? h('ul', { class: 'jp-nbripple-list' }, ...execution.inputs.map(i => refLink(i.ref))) : null],
        ['Outputs', execution.outputs.length ? h('ul', { class: 'jp-nbripple-list' }, ...execution.outputs.map(refLink)) : null],
        [
          'Parameters',
          Object.keys(execution.parameters ?? {}).length
            ? h('pre', { class: 'jp-nbripple-meta-json' }, JSON.stringify(execution.parameters, null, 2))
            : null
        ]
      ]),
      actions
    );
  }

  async rerun(id: string): Promise<void> {
    try {
      const started = (await this._api.rerun(id)) as { id?: string };
      Notification.success(`Rerun started${started.id ? `: ${shortId(started.id)}` : ''}`, { autoClose: 3000 });
      await this.refresh();
    } catch (error) {
      Notification.error(`Could not rerun ${shortId(id)}: ${(error as Error).message}`);
    }
  }

  private _status: HTMLElement;
  private _detail: HTMLElement;
  private _list: HTMLUListElement;
  private _openId: string | null = null;
  private _latest = new Latest();
  private _versionOpened = new Signal<this, string>(this);
  private _notebookOpened = new Signal<this, string>(this);
}
