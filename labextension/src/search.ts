/**
 * The search view: a text box (debounced), `key=value` partition filters, a kind
 * filter and an all-versions toggle; results newest first. Only the latest request
 * renders (each keystroke aborts the request before it), so typing never waits.
 */
import { Signal, ISignal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { button, h, replaceChildren } from './dom';
import { baseName, parseFilters, partitionText, shortId, timeText } from './format';
import { debounce, Latest } from './latest';
import { IVersion, NbrippleApi, ISearchQuery } from './request';

/** How long the text boxes wait after the last keystroke. */
export const DEBOUNCE_MS = 150;

export const KINDS = ['', 'table', 'object', 'value', 'file', 'directory'];

/** One result row: name@version, kind, partitions, created, producer. */
export function resultRow(version: IVersion, onOpen: (v: IVersion) => void): HTMLElement {
  const producer = version.producer;
  const row = h(
    'li',
    { class: 'jp-nbripple-result', 'data-ref': version.ref, tabindex: '0' },
    h(
      'div',
      { class: 'jp-nbripple-result-head' },
      h('span', { class: 'jp-nbripple-ref' }, version.ref),
      h('span', { class: 'jp-nbripple-kind' }, version.kind)
    ),
    version.partitions && Object.keys(version.partitions).length
      ? h('div', { class: 'jp-nbripple-partitions' }, partitionText(version.partitions))
      : null,
    h(
      'div',
      { class: 'jp-nbripple-meta' },
      h('span', { class: 'jp-nbripple-created' }, timeText(version.created_at)),
      producer
        ? h(
            'span',
            { class: 'jp-nbripple-producer', title: producer.id },
            `by ${baseName(producer.notebook) || producer.label || producer.kind} ` +
              `(${shortId(producer.id)}, ${producer.status})`
          )
        : h('span', { class: 'jp-nbripple-producer' }, 'interactive')
    )
  );
  row.addEventListener('click', () => onOpen(version));
  row.addEventListener('keydown', event => {
    if (event.key === 'Enter') {
      onOpen(version);
    }
  });
  return row;
}

export class SearchView extends Widget {
  constructor(private readonly _api: NbrippleApi) {
    super();
    this.addClass('jp-nbripple-search');
    this._text = h('input', {
      type: 'search',
      class: 'jp-mod-styled jp-nbripple-search-text',
      placeholder: 'Search artifacts',
      'aria-label': 'Search artifacts'
    });
    this._filters = h('input', {
      type: 'text',
      class: 'jp-mod-styled jp-nbripple-search-filters',
      placeholder: 'Partitions: key=value …',
      'aria-label': 'Partition filters'
    });
    this._kind = h('select', {
      class: 'jp-mod-styled jp-nbripple-search-kind',
      'aria-label': 'Kind'
    });
    for (const kind of KINDS) {
      this._kind.appendChild(h('option', { value: kind }, kind || 'any kind'));
    }
    this._all = h('input', { type: 'checkbox', class: 'jp-nbripple-search-all' });
    this._status = h('div', { class: 'jp-nbripple-status', role: 'status' });
    this._results = h('ul', { class: 'jp-nbripple-results' });

    const debounced = debounce(() => void this.refresh(), DEBOUNCE_MS);
    this._schedule = debounced;
    // 'typing' until the search of the last keystroke has rendered
    const schedule = () => {
      this.node.dataset.state = 'typing';
      this._latest.cancel(); // what is in flight answers an older query
      debounced();
    };
    this._text.addEventListener('input', schedule);
    this._filters.addEventListener('input', schedule);
    this._kind.addEventListener('change', () => void this.refresh());
    this._all.addEventListener('change', () => void this.refresh());

    this.node.append(
      h(
        'div',
        { class: 'jp-nbripple-search-form' },
        this._text,
        this._filters,
        h(
          'div',
          { class: 'jp-nbripple-row' },
          this._kind,
          h('label', { class: 'jp-nbripple-toggle' }, this._all, 'all versions'),
          button('Refresh', () => void this.refresh(), { title: 'Search again' })
        )
      ),
      this._status,
      this._results
    );
  }

  /** A version was chosen in the results. */
  get opened(): ISignal<this, IVersion> {
    return this._opened;
  }

  /** The query the form describes (null with a filter that is not key=value). */
  query(): ISearchQuery | null {
    const { partitions, invalid } = parseFilters(this._filters.value);
    if (invalid.length) {
      this._status.textContent = `not key=value: ${invalid.join(', ')}`;
      return null;
    }
    return {
      text: this._text.value,
      kind: this._kind.value || undefined,
      partitions,
      allVersions: this._all.checked
    };
  }

  /** Set the text box (the search command) and search now. */
  setText(text: string): void {
    this._text.value = text;
    void this.refresh();
  }

  focusText(): void {
    this._text.focus();
  }

  /** Search with the form's values; only the latest call's results render. */
  async refresh(): Promise<void> {
    this._schedule.cancel();
    const query = this.query();
    if (query === null) {
      this._latest.cancel();
      return;
    }
    this.node.dataset.state = 'loading';
    try {
      const rows = await this._latest.run(signal => this._api.search(query, signal));
      if (rows === undefined) {
        return; // a newer search is under way
      }
      this.render(rows);
    } catch (error) {
      this._status.textContent = (error as Error).message;
      this.node.dataset.state = 'error';
    }
  }

  render(rows: IVersion[]): void {
    replaceChildren(this._results, ...rows.map(v => resultRow(v, r => this._opened.emit(r))));
    this._status.textContent = rows.length
      ? `${rows.length} version${rows.length === 1 ? '' : 's'}`
      : 'nothing matches';
    this.node.dataset.state = 'ready';
  }

  dispose(): void {
    this._schedule.cancel();
    this._latest.cancel();
    super.dispose();
  }

  private _text: HTMLInputElement;
  private _filters: HTMLInputElement;
  private _kind: HTMLSelectElement;
  private _all: HTMLInputElement;
  private _status: HTMLElement;
  private _results: HTMLUListElement;
  private _schedule: ReturnType<typeof debounce>;
  private _latest = new Latest();
  private _opened = new Signal<this, IVersion>(this);
}
