/**
 * The artifact view of one version, in four tabs: Overview (version, partitions, kind,
 * size, created, its producer and consumers, the line that loads it with a copy
 * button), Object (where and what it is), Card (the server's sanitized HTML, sanitized
 * again by JupyterLab's sanitizer; edit saves a new revision; the history) and Lineage.
 */
import { Clipboard, Dialog, showDialog } from '@jupyterlab/apputils';
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Signal, ISignal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { button, h, replaceChildren } from './dom';
import { baseName, partitionText, shortId, sizeText, timeText } from './format';
import { Latest } from './latest';
import { LineageView } from './lineage';
import { PREVIEW_ROWS, renderPreview } from './preview';
import { ICardView, IExecutionSummary, IPreview, IVersionDetail, NbrippleApi } from './request';

export const TABS = ['Overview', 'Object', 'Card', 'Lineage'] as const;
export type Tab = (typeof TABS)[number];

/** A definition list from label/value pairs (empty values left out). */
export function fields(pairs: [string, string | Node | null | undefined][]): HTMLElement {
  const dl = h('dl', { class: 'jp-nbripple-fields' });
  for (const [label, value] of pairs) {
    if (value === null || value === undefined || value === '') {
      continue;
    }
    dl.append(h('dt', {}, label), h('dd', {}, value));
  }
  return dl;
}

/** A link to an execution, or plain text when there is none. */
function executionLink(execution: IExecutionSummary, open: (id: string) => void): HTMLElement {
  const link = h(
    'a',
    {
      href: '#',
      class: 'jp-nbripple-link jp-nbripple-execution-link',
      'data-id': execution.id,
      title: execution.notebook ?? execution.id
    },
    `${baseName(execution.notebook) || execution.label || execution.kind} · ${shortId(execution.id)} · ${
      execution.status
    }`
  );
  link.addEventListener('click', event => {
    event.preventDefault();
    open(execution.id);
  });
  return link;
}

/** Put `html` (already sanitized by the server) through JupyterLab's sanitizer too. */
export function renderCardHtml(
  el: HTMLElement,
  html: string,
  sanitizer: IRenderMime.ISanitizer
): void {
  el.innerHTML = sanitizer.sanitize(html);
}

export class ArtifactView extends Widget {
  constructor(
    private readonly _api: NbrippleApi,
    private readonly _sanitizer: IRenderMime.ISanitizer
  ) {
    super();
    this.addClass('jp-nbripple-artifact');
    this._title = h('div', { class: 'jp-nbripple-artifact-title' });
    this._tabBar = h('div', { class: 'jp-nbripple-tabs', role: 'tablist' });
    for (const tab of TABS) {
      const el = button(tab, () => this.select(tab), {
        class: 'jp-nbripple-tab',
        role: 'tab',
        'data-tab': tab
      });
      this._tabBar.appendChild(el);
    }
    this._body = h('div', { class: 'jp-nbripple-tab-body' });
    this.lineage = new LineageView(_api);
    this.lineage.executionClicked.connect((_, id) => this._executionOpened.emit(id));
    this.node.append(
      h(
        'div',
        { class: 'jp-nbripple-row' },
        button('← Results', () => this._back.emit(), { class: 'jp-nbripple-back' }),
        this._title
      ),
      this._tabBar,
      this._body
    );
  }

  readonly lineage: LineageView;

  /** An execution link or node was clicked. */
  get executionOpened(): ISignal<this, string> {
    return this._executionOpened;
  }

  /** Back to the results. */
  get back(): ISignal<this, void> {
    return this._back;
  }

  /** The version shown (null before the first). */
  get detail(): IVersionDetail | null {
    return this._detail;
  }

  /** Show version `version` of `name`, on the Overview tab. */
  async open(name: string, version: number): Promise<void> {
    this._title.textContent = `${name}@${version}`;
    this.node.dataset.state = 'loading';
    try {
      const detail = await this._latest.run(signal => this._api.version(name, version, signal));
      if (detail === undefined) {
        return;
      }
      this._detail = detail;
      this._card = null;
      this._preview = null;
      this.node.dataset.ref = detail.ref;
      this.select('Overview');
      this.node.dataset.state = 'ready';
    } catch (error) {
      replaceChildren(
        this._body,
        h('div', { class: 'jp-nbripple-error' }, (error as Error).message)
      );
      this.node.dataset.state = 'error';
    }
  }

  /** Reload what is shown (a live change to this version or its card). */
  async reload(): Promise<void> {
    if (this._detail) {
      const tab = this._tab;
      await this.open(this._detail.name, this._detail.version);
      this.select(tab);
    }
  }

  select(tab: Tab): void {
    this._tab = tab;
    for (const el of Array.from(this._tabBar.children)) {
      el.classList.toggle('jp-mod-current', (el as HTMLElement).dataset.tab === tab);
      el.setAttribute('aria-selected', String((el as HTMLElement).dataset.tab === tab));
    }
    if (this.lineage.isAttached) {
      Widget.detach(this.lineage);
    }
    replaceChildren(this._body);
    const detail = this._detail;
    if (!detail) {
      return;
    }
    this._body.dataset.tab = tab;
    switch (tab) {
      case 'Overview':
        this._body.append(this.overview(detail));
        break;
      case 'Object':
        this._body.append(this.object(detail));
        void this.showPreview(detail);
        break;
      case 'Card':
        void this.showCard(detail);
        break;
      case 'Lineage':
        Widget.attach(this.lineage, this._body);
        void this.lineage.centreOn(detail.ref);
        break;
    }
  }

  overview(detail: IVersionDetail): HTMLElement {
    const open = (id: string) => this._executionOpened.emit(id);
    const consumers = detail.consumers.length
      ? h(
          'ul',
          { class: 'jp-nbripple-list' },
          ...detail.consumers.map(c => h('li', {}, executionLink(c, open)))
        )
      : 'none yet';
    const snippet = h('pre', { class: 'jp-nbripple-snippet' }, detail.snippet);
    const copy = button(
      'Copy',
      () => {
        Clipboard.copyToSystem(detail.snippet);
        copy.textContent = 'Copied';
        copy.dataset.copied = 'true';
      },
      { class: 'jp-nbripple-copy', title: 'Copy the line that loads this version' }
    );
    return h(
      'div',
      { class: 'jp-nbripple-overview' },
      detail.description ? h('p', { class: 'jp-nbripple-description' }, detail.description) : null,
      fields([
        ['Version', String(detail.version)],
        ['Partitions', partitionText(detail.partitions) || 'none'],
        ['Kind', detail.kind],
        ['Size', sizeText(detail.size)],
        ['Created', timeText(detail.created_at)],
        [
          'Produced by',
          detail.producer
            ? h('span', { class: 'jp-nbripple-producer' }, executionLink(detail.producer, open))
            : 'an interactive session'
        ],
        ['Consumed by', consumers]
      ]),
      h('div', { class: 'jp-nbripple-row jp-nbripple-snippet-row' }, snippet, copy)
    );
  }

  object(detail: IVersionDetail): HTMLElement {
    const schema = detail.schema as
      { name?: string; type?: string }[] | Record<string, string> | null;
    let schemaEl: HTMLElement | null = null;
    if (Array.isArray(schema)) {
      schemaEl = h(
        'table',
        { class: 'jp-nbripple-schema' },
        h('tr', {}, h('th', {}, 'column'), h('th', {}, 'type')),
        ...schema.map(c =>
          h('tr', {}, h('td', {}, String(c.name ?? '')), h('td', {}, String(c.type ?? '')))
        )
      );
    } else if (schema && typeof schema === 'object') {
      schemaEl = h(
        'table',
        { class: 'jp-nbripple-schema' },
        h('tr', {}, h('th', {}, 'column'), h('th', {}, 'type')),
        ...Object.entries(schema).map(([k, v]) =>
          h('tr', {}, h('td', {}, k), h('td', {}, String(v)))
        )
      );
    }
    return h(
      'div',
      { class: 'jp-nbripple-object' },
      fields([
        ['URI', detail.uri],
        ['Stored at', detail.blob_uri],
        ['Hash', detail.hash],
        ['Python type', detail.python_type],
        ['Rows', detail.num_rows === null ? null : String(detail.num_rows)],
        ['Schema', schemaEl],
        [
          'Metadata',
          detail.meta && Object.keys(detail.meta).length
            ? h('pre', { class: 'jp-nbripple-meta-json' }, JSON.stringify(detail.meta, null, 2))
            : null
        ]
      ])
    );
  }

  /** The Object tab's preview (first rows, files, value), loaded after the fields. */
  async showPreview(detail: IVersionDetail): Promise<void> {
    const title = h('div', { class: 'jp-nbripple-subtitle' }, 'Preview');
    const holder = h(
      'div',
      { class: 'jp-nbripple-preview', 'data-state': 'loading' },
      title,
      h('div', { class: 'jp-nbripple-status' }, 'Loading…')
    );
    this._body.append(holder);
    try {
      const preview =
        this._preview?.ref === detail.ref
          ? this._preview
          : await this._api.preview(detail.name, detail.version, PREVIEW_ROWS);
      if (this._detail !== detail) {
        return; // another version was opened meanwhile
      }
      this._preview = preview;
      replaceChildren(holder, title, renderPreview(preview));
      holder.dataset.state = 'ready';
    } catch (error) {
      // e.g. the blob is gone from the store: one line in the tab, nothing else breaks
      replaceChildren(
        holder,
        title,
        h('div', { class: 'jp-nbripple-error' }, (error as Error).message)
      );
      holder.dataset.state = 'error';
    }
  }

  async showCard(detail: IVersionDetail): Promise<void> {
    const holder = h('div', { class: 'jp-nbripple-card' }, 'Loading the card…');
    this._body.append(holder);
    try {
      const card = this._card ?? (await this._api.card(detail.name, detail.version));
      this._card = card;
      if (this._tab !== 'Card' || this._detail !== detail) {
        return;
      }
      this.renderCard(holder, detail, card);
    } catch (error) {
      replaceChildren(holder, h('div', { class: 'jp-nbripple-error' }, (error as Error).message));
    }
  }

  renderCard(holder: HTMLElement, detail: IVersionDetail, card: ICardView): void {
    const rendered = h('div', { class: 'jp-nbripple-card-html jp-RenderedHTMLCommon' });
    if (card.html) {
      renderCardHtml(rendered, card.html, this._sanitizer);
    } else {
      rendered.textContent = 'No card yet.';
    }
    const edit = button('Edit', () => void this.editCard(detail, card), {
      class: 'jp-nbripple-card-edit'
    });
    const history = h(
      'ol',
      { class: 'jp-nbripple-history' },
      ...card.history.map(r =>
        h('li', {}, `revision ${r.revision} · ${r.card_type ?? 'card'} · ${timeText(r.created_at)}`)
      )
    );
    replaceChildren(
      holder,
      h('div', { class: 'jp-nbripple-row' }, edit),
      rendered,
      card.history.length ? h('div', { class: 'jp-nbripple-subtitle' }, 'History') : null,
      history
    );
  }

  /** The edit dialog; saving adds a revision and shows it. */
  async editCard(detail: IVersionDetail, card: ICardView): Promise<void> {
    const area = h('textarea', { class: 'jp-mod-styled jp-nbripple-card-editor', rows: '14' });
    area.value = card.markdown ?? '';
    const body = new Widget({ node: h('div', { class: 'jp-nbripple-card-dialog' }, area) });
    const result = await showDialog({
      title: `Card of ${detail.ref}`,
      body,
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Save' })],
      focusNodeSelector: 'textarea'
    });
    if (!result.button.accept) {
      return;
    }
    await this.saveCard(detail, area.value);
  }

  async saveCard(detail: IVersionDetail, markdown: string): Promise<void> {
    this._card = await this._api.saveCard(detail.name, detail.version, markdown, detail.card_type);
    if (this._detail === detail) {
      this.select('Card');
    }
  }

  dispose(): void {
    this._latest.cancel();
    this.lineage.dispose();
    super.dispose();
  }

  private _title: HTMLElement;
  private _tabBar: HTMLElement;
  private _body: HTMLElement;
  private _tab: Tab = 'Overview';
  private _detail: IVersionDetail | null = null;
  private _card: ICardView | null = null;
  private _preview: IPreview | null = null;
  private _latest = new Latest();
  private _executionOpened = new Signal<this, string>(this);
  private _back = new Signal<this, void>(this);
}
