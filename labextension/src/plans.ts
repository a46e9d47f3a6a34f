/**
 * The launch plans: name, version, state, trigger, schedule, last fired, next run,
 * recent results and why a plan stopped, each with an activate toggle and Launch…
 * (the launch form, shown above the list; the run it starts opens in Executions).
 */
import { Notification } from '@jupyterlab/apputils';
import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { button, h, replaceChildren } from './dom';
import { fields } from './artifact';
import { LaunchForm } from './form';
import { shortId, timeText } from './format';
import { Latest } from './latest';
import { IPlan, NbrippleApi } from './request';

/** One plan's card, with its toggle (`onToggle(active)`) and Launch… (`onLaunch`). */
export function planItem(
  plan: IPlan,
  onToggle: (active: boolean) => void,
  onLaunch?: () => void
): HTMLElement {
  const toggle = h('input', {
    type: 'checkbox',
    class: 'jp-nbripple-plan-toggle',
    'aria-label': `${plan.name} active`,
    title: plan.active ? 'Active: click to deactivate' : 'Inactive: click to activate'
  });
  toggle.checked = plan.active;
  toggle.addEventListener('change', () => onToggle(toggle.checked));
  return h(
    'li',
    { class: 'jp-nbripple-plan', 'data-plan': plan.name, 'data-state': plan.state },
    h(
      'div',
      { class: 'jp-nbripple-result-head' },
      h(
        'label',
        { class: 'jp-nbripple-toggle' },
        toggle,
        h('span', { class: 'jp-nbripple-ref' }, plan.name)
      ),
      h(
        'span',
        { class: 'jp-nbripple-kind' },
        `v${plan.version ?? plan.latest_version ?? '?'} · ${plan.state}`
      )
    ),
    fields([
      ['Notebook', plan.notebook],
      ['Trigger', plan.trigger],
      ['Schedule', plan.schedule ? `${plan.schedule} (${plan.timezone})` : null],
      ['Last fired', timeText(plan.last_fired)],
      ['Next run', timeText(plan.next_run)],
      ['Recent', plan.recent_results.join(' ')],
      ['Stopped', plan.stopped_reason]
    ]),
    onLaunch
      ? h(
          'div',
          { class: 'jp-nbripple-row' },
          button('Launch…', () => onLaunch(), {
            class: 'jp-nbripple-launch',
            title: `Run ${plan.name} now, with its parameters or others`
          })
        )
      : null
  );
}

export class PlansView extends Widget {
  constructor(private readonly _api: NbrippleApi) {
    super();
    this.addClass('jp-nbripple-plans');
    this._status = h('div', { class: 'jp-nbripple-status', role: 'status' });
    this._list = h('ul', { class: 'jp-nbripple-results' });
    this._formSlot = h('div', { class: 'jp-nbripple-form-slot' });
    this.node.append(this._formSlot, this._status, this._list);
  }

  /** A launch started a run (its execution id). */
  get launched(): ISignal<this, string> {
    return this._launched;
  }

  async refresh(): Promise<void> {
    try {
      const plans = await this._latest.run(() => this._api.plans());
      if (plans !== undefined) {
        this.render(plans);
      }
    } catch (error) {
      this._status.textContent = (error as Error).message;
    }
  }

  render(plans: IPlan[]): void {
    replaceChildren(
      this._list,
      ...plans.map(p =>
        planItem(
          p,
          active => void this.toggle(p.name, active),
          () => this.launch(p.name)
        )
      )
    );
    this._status.textContent = plans.length ? '' : 'No launch plans yet (nbripple plans register).';
    this.node.dataset.state = 'ready';
  }

  async toggle(name: string, active: boolean): Promise<void> {
    try {
      await this._api.setPlanActive(name, active);
    } catch (error) {
      Notification.error(
        `Could not ${active ? 'activate' : 'deactivate'} ${name}: ${(error as Error).message}`
      );
    }
    await this.refresh();
  }

  // -- Launch… -------------------------------------------------------------------------

  /** The launch form shown above the list (null: none). */
  get form(): LaunchForm | null {
    return this._form;
  }

  /** Open plan `name`'s launch form (replacing one open). */
  launch(name: string): LaunchForm {
    this.closeForm();
    const title = `Launch ${name}`;
    const form = new LaunchForm({
      title,
      submitLabel: 'Launch',
      load: () => this._api.planForm(name),
      submit: parameters => this._api.launchPlan(name, parameters),
      done: execution => {
        this.closeForm();
        Notification.success(`${title}: started ${shortId(execution.id)}`, { autoClose: 3000 });
        this._launched.emit(execution.id);
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
  private _list: HTMLUListElement;
  private _formSlot: HTMLElement;
  private _form: LaunchForm | null = null;
  private _latest = new Latest();
  private _launched = new Signal<this, string>(this);
}
