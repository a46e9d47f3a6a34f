/**
 * The launch plans: name, version, state, trigger, schedule, last fired, next run,
 * recent results and why a plan stopped, each with an activate toggle.
 */
import { Notification } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { h, replaceChildren } from './dom';
import { fields } from './artifact';
import { timeText } from './format';
import { Latest } from './latest';
import { IPlan, NbrippleApi } from './request';

/** One plan's card, with its toggle (`onToggle(active)`). */
export function planItem(plan: IPlan, onToggle: (active: boolean) => void): HTMLElement {
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
      h('label', { class: 'jp-nbripple-toggle' }, toggle, h('span', { class: 'jp-nbripple-ref' }, plan.name)),
      h('span', { class: 'jp-nbripple-kind' }, `v${plan.version ?? plan.latest_version ?? '?'} · ${plan.state}`)
    ),
    fields([
      ['Notebook', plan.notebook],
      ['Trigger', plan.trigger],
      ['Schedule', plan.schedule ? `${plan.schedule} (${plan.timezone})` : null],
      ['Last fired', timeText(plan.last_fired)],
      ['Next run', timeText(plan.next_run)],
      ['Recent', plan.recent_results.join(' ')],
      ['Stopped', plan.stopped_reason]
    ])
  );
}

export class PlansView extends Widget {
  constructor(private readonly _api: NbrippleApi) {
    super();
    this.addClass('jp-nbripple-plans');
    this._status = h('div', { class: 'jp-nbripple-status', role: 'status' });
    this._list = h('ul', { class: 'jp-nbripple-results' });
    this.node.append(this._status, this._list);
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
    replaceChildren(this._list, ...plans.map(p => planItem(p, active => void this.toggle(p.name, active))));
    this._status.textContent = plans.length ? '' : 'No launch plans yet (nbripple plans register).';
    this.node.dataset.state = 'ready';
  }

  async toggle(name: string, active: boolean): Promise<void> {
    try {
      await this._api.setPlanActive(name, active);
    } catch (error) {
      Notification.error(`Could not ${active ? 'activate' : 'deactivate'} ${name}: ${(error as Error).message}`);
    }
    await this.refresh();
  }

  private _status: HTMLElement;
  private _list: HTMLUListElement;
  private _latest = new Latest();
}
