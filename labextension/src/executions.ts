/**
 * The executions: id, notebook, status, trigger, duration and error, newest first;
 * one opens to its inputs and outputs (as links), its parameters, Rerun, Relaunch…
 * (the launch form, pre-filled from the execution) and Open notebook. A launch form
 * (a relaunch, or a run of a notebook file) shows above the list.
 */
import { Notification } from '@jupyterlab/apputils';
import { Signal, ISignal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { button, h, replaceChildren } from './dom';
import { fields } from './artifact';
import { ILaunchFormOptions, LaunchForm } from './form';
import { baseName, durationText, shortId, timeText } from './format';
import { Latest } from './latest';
import { IExecution, IExecutionRow, NbrippleApi, NotebookWhich } from './request';

/** An execution's error as one line ('' when it did not fail). */
export function errorText(error: IExecutionRow['error']): string {
  if (!error) {
    return '';
  }
  return [error.ename, error.evalue].filter(Boolean).join(': ') || JSON.stringify(error);
}

/** What started an execution, in a few words: `manual · plan predict`, `rerun of 1a2b3c4d`. */
export function triggerText(trigger: IExecutionRow['trigger'], kind = ''): string {
  if (!trigger) {
    return kind;
  }
  const parts = [String(trigger.type ?? kind)];
  if (trigger.plan) {
    parts.push(`plan ${String(trigger.plan)}`);
  }
  if (trigger.artifact && trigger.version) {
    parts.push(`by ${String(trigger.artifact)}@${String(trigger.version)}`);
  }
  if (trigger.of) {
    parts.push(`of ${shortId(String(trigger.of))}`);
  }
  return parts.filter(Boolean).join(' · ');
}

/** An executed notebook (or the notebook it ran) was asked for. */
export interface INotebookRequest {
  id: string;
  which: NotebookWhich;
}

export function executionItem(row: IExecutionRow, onOpen: (id: string) => void): HTMLElement {
  const item = h(
    'li',
    { class: 'jp-nbripple-execution', 'data-id': row.id, 'data-status': row.status, tabindex: '0' },
    h(
      'div',
      { class: 'jp-nbripple-result-head' },
      h(
        'span',
        { class: 'jp-nbripple-ref', title: row.notebook ?? '' },
        baseName(row.notebook) || row.label || row.kind
      ),
      h('span', { class: `jp-nbripple-status-badge jp-nbripple-${row.status}` }, row.status)
    ),
    h(
      'div',
      { class: 'jp-nbripple-meta' },
      h('span', {}, shortId(row.id)),
      h('span', {}, triggerText(row.trigger, row.kind)),
      h('span', {}, timeText(row.started_at)),
      h('span', {}, durationText(row.duration_s))
    ),
    row.error ? h('div', { class: 'jp-nbripple-error' }, errorText(row.error)) : null
  );
  item.addEventListener('click', () => onOpen(row.id));
  item.addEventListener('keydown', event => {
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      onOpen(row.id);
    }
  });
  return item;
}

export class ExecutionsView extends Widget {
  constructor(private readonly _api: NbrippleApi) {
    super();
    this.addClass('jp-nbripple-executions');
    this._status = h('div', { class: 'jp-nbripple-status', role: 'status' });
    this._detail = h('div', { class: 'jp-nbripple-execution-detail' });
    this._list = h('ul', { class: 'jp-nbripple-results' });
    this._formSlot = h('div', { class: 'jp-nbripple-form-slot' });
    this.node.append(this._formSlot, this._detail, this._status, this._list);
  }

  /** A version ref was clicked (an input or an output). */
  get versionOpened(): ISignal<this, string> {
    return this._versionOpened;
  }

  /** The executed notebook (or the notebook it ran) was asked for. */
  get notebookOpened(): ISignal<this, INotebookRequest> {
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
      replaceChildren(
        this._detail,
        h('div', { class: 'jp-nbripple-error' }, (error as Error).message)
      );
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
      execution.output_notebook_hash
        ? button(
            'Open notebook',
            () => this._notebookOpened.emit({ id: execution.id, which: 'output' }),
            {
              class: 'jp-nbripple-open-notebook',
              title: 'Open the executed notebook, with its outputs, in a tab'
            }
          )
        : null,
      execution.kind === 'notebook' && execution.notebook
        ? button('Rerun', () => void this.rerun(execution.id), {
            class: 'jp-nbripple-rerun',
            title: 'Run the same notebook snapshot with the same inputs again'
          })
        : null,
      execution.kind === 'notebook' && execution.notebook
        ? button('Relaunch…', () => this.relaunch(execution.id), {
            class: 'jp-nbripple-relaunch',
            title: 'Run the notebook as it is now, with the same parameters or others'
          })
        : null,
      execution.notebook_hash
        ? button(
            'Open input',
            () => this._notebookOpened.emit({ id: execution.id, which: 'input' }),
            {
              class: 'jp-nbripple-open-input',
              title: 'Open the notebook exactly as this execution ran it'
            }
          )
        : null
    );
    return h(
      'div',
      { class: 'jp-nbripple-execution-card', 'data-id': execution.id },
      h(
        'div',
        { class: 'jp-nbripple-subtitle' },
        `${execution.notebook ?? execution.label ?? execution.kind}`
      ),
      fields([
        ['Id', execution.id],
        ['Status', execution.status],
        ['Trigger', triggerText(execution.trigger, execution.kind)],
        ['Started', timeText(execution.started_at)],
        ['Duration', durationText(execution.duration_s)],
        ['Error', errorText(execution.error)],
        [
          'Inputs',
          execution.inputs.length
            ? h('ul', { class: 'jp-nbripple-list' }, ...execution.inputs.map(i => refLink(i.ref)))
            : null
        ],
        [
          'Outputs',
          execution.outputs.length
            ? h('ul', { class: 'jp-nbripple-list' }, ...execution.outputs.map(refLink))
            : null
        ],
        [
          'Parameters',
          Object.keys(execution.parameters ?? {}).length
            ? h(
                'pre',
                { class: 'jp-nbripple-meta-json' },
                JSON.stringify(execution.parameters, null, 2)
              )
            : null
        ]
      ]),
      actions
    );
  }

  async rerun(id: string): Promise<void> {
    try {
      const started = (await this._api.rerun(id)) as { id?: string };
      Notification.success(`Rerun started${started.id ? `: ${shortId(started.id)}` : ''}`, {
        autoClose: 3000
      });
      await this.refresh();
      if (started.id) {
        await this.open(started.id);
      }
    } catch (error) {
      Notification.error(`Could not rerun ${shortId(id)}: ${(error as Error).message}`);
    }
  }

  // -- launch forms: Relaunch…, and runs of a notebook file ------------------------

  /** The launch form shown above the list (null: none). */
  get form(): LaunchForm | null {
    return this._form;
  }

  /** Open the Relaunch… form of execution `id` (pre-filled from it). */
  relaunch(id: string): LaunchForm {
    return this.showForm({
      title: `Relaunch ${shortId(id)}`,
      submitLabel: 'Relaunch',
      load: () => this._api.relaunchForm(id),
      submit: parameters => this._api.relaunch(id, parameters)
    });
  }

  /** Open the form of a run of notebook `path` (relative to the Jupyter root). */
  runNotebook(path: string): LaunchForm {
    return this.showForm({
      title: `Run ${baseName(path)}`,
      submitLabel: 'Run',
      load: () => this._api.notebookForm(path),
      submit: parameters => this._api.runNotebook(path, parameters)
    });
  }

  /** Show a launch form above the list (replacing one open); the run it starts opens. */
  showForm(options: Omit<ILaunchFormOptions, 'done' | 'cancel'>): LaunchForm {
    this.closeForm();
    const form = new LaunchForm({
      ...options,
      done: execution => {
        this.closeForm();
        Notification.success(`${options.title}: started ${shortId(execution.id)}`, {
          autoClose: 3000
        });
        void this.refresh().then(() => this.open(execution.id));
      },
      cancel: () => this.closeForm()
    });
    this._form = form;
    this._formSlot.appendChild(form.node);
    form.node.scrollIntoView?.({ block: 'nearest' });
    void form.load();
    return form;
  }

  closeForm(): void {
    this._form?.dispose();
    this._form = null;
  }

  private _status: HTMLElement;
  private _detail: HTMLElement;
  private _list: HTMLUListElement;
  private _formSlot: HTMLElement;
  private _form: LaunchForm | null = null;
  private _openId: string | null = null;
  private _latest = new Latest();
  private _versionOpened = new Signal<this, string>(this);
  private _notebookOpened = new Signal<this, INotebookRequest>(this);
}
