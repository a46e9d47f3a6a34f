/**
 * The nbripple sidebar panel: a header choosing a section (Search, Plans, Executions,
 * Watcher), the artifact view opened from a result, and the live loop that refreshes
 * what a committed change affects.
 */
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Notification } from '@jupyterlab/apputils';
import { Panel, StackedPanel, Widget } from '@lumino/widgets';

import { ArtifactView } from './artifact';
import { button, h } from './dom';
import { ExecutionsView, INotebookRequest } from './executions';
import { parseRef } from './format';
import { affected, LiveLoop } from './live';
import { PlansView } from './plans';
import { ILiveItem, NbrippleApi } from './request';
import { SearchView } from './search';
import { WatcherView } from './watcher';

export const SECTIONS = ['Search', 'Plans', 'Executions', 'Watcher'] as const;
export type Section = (typeof SECTIONS)[number];

export interface ISidebarOptions {
  api: NbrippleApi;
  sanitizer: IRenderMime.ISanitizer;
  /** Open an execution's executed notebook (or the one it ran) in a JupyterLab tab. */
  openNotebook?: (request: INotebookRequest) => void | Promise<void>;
}

export class NbrippleSidebar extends Panel {
  constructor(options: ISidebarOptions) {
    super();
    this.id = 'nbripple-sidebar';
    this.addClass('jp-nbripple-sidebar');
    this.api = options.api;
    this.search = new SearchView(this.api);
    this.artifact = new ArtifactView(this.api, options.sanitizer);
    this.plans = new PlansView(this.api);
    this.executions = new ExecutionsView(this.api);
    this.watcher = new WatcherView(this.api);

    this.search.opened.connect((_, v) => void this.openVersion(v.name, v.version));
    this.artifact.back.connect(() => this.showSearch());
    this.artifact.executionOpened.connect((_, id) => void this.openExecution(id));
    this.executions.versionOpened.connect((_, ref) => void this.openRef(ref));
    if (options.openNotebook) {
      const openNotebook = options.openNotebook;
      this.executions.notebookOpened.connect((_, request) => void openNotebook(request));
    }
    this.plans.launched.connect((_, id) => void this.openExecution(id));

    this._nav = h('div', { class: 'jp-nbripple-nav', role: 'tablist' });
    for (const section of SECTIONS) {
      this._nav.appendChild(
        button(section, () => this.showSection(section), {
          class: 'jp-nbripple-nav-item',
          'data-section': section
        })
      );
    }
    const header = new Widget({
      node: h(
        'div',
        { class: 'jp-nbripple-header' },
        h('div', { class: 'jp-nbripple-heading' }, 'nbripple'),
        this._nav
      )
    });
    this._stack = new StackedPanel();
    this._stack.addClass('jp-nbripple-stack');
    for (const view of [this.search, this.artifact, this.plans, this.executions, this.watcher]) {
      this._stack.addWidget(view);
      view.hide();
    }
    this.addWidget(header);
    this.addWidget(this._stack);
    this.showSection('Search');

    this._live = new LiveLoop(this.api, {
      changed: items => this.changed(items),
      reset: () => this.refreshAll()
    });
  }

  readonly api: NbrippleApi;
  readonly search: SearchView;
  readonly artifact: ArtifactView;
  readonly plans: PlansView;
  readonly executions: ExecutionsView;
  readonly watcher: WatcherView;

  /** The section shown ('Search' while an artifact is open). */
  get section(): Section {
    return this._section;
  }

  showSection(section: Section): void {
    this._section = section;
    for (const el of Array.from(this._nav.children)) {
      el.classList.toggle('jp-mod-current', (el as HTMLElement).dataset.section === section);
    }
    const view: Widget =
      section === 'Search'
        ? this._artifactOpen
          ? this.artifact
          : this.search
        : section === 'Plans'
          ? this.plans
          : section === 'Executions'
            ? this.executions
            : this.watcher;
    for (const child of this._stack.widgets) {
      child.setHidden(child !== view);
    }
    this.node.dataset.section = section;
    void (view as { refresh?: () => Promise<void> }).refresh?.();
  }

  showSearch(): void {
    this._artifactOpen = false;
    this.showSection('Search');
  }

  async openVersion(name: string, version: number): Promise<void> {
    this._artifactOpen = true;
    this.showSection('Search');
    await this.artifact.open(name, version);
  }

  /** Open `name@N` (or resolve any other ref first). */
  async openRef(ref: string): Promise<void> {
    const pinned = parseRef(ref);
    try {
      if (pinned) {
        await this.openVersion(pinned.name, pinned.version);
      } else {
        const found = await this.api.resolve(ref);
        await this.openVersion(found.name, found.version);
      }
    } catch (error) {
      Notification.error(`nbripple: cannot open ${ref}: ${(error as Error).message}`);
    }
  }

  async openExecution(id: string): Promise<void> {
    this.showSection('Executions');
    await this.executions.open(id);
  }

  /** The parameters form of a run of notebook `path` (relative to the Jupyter root). */
  runNotebook(path: string): void {
    this.showSection('Executions');
    this.executions.runNotebook(path);
  }

  /** Refresh what a batch of live changes affects (only what is on screen). */
  changed(items: ILiveItem[]): void {
    const parts = affected(items);
    if (parts.has('versions') && this._section === 'Search' && !this._artifactOpen) {
      void this.search.refresh();
    }
    if (parts.has('plans') && this._section === 'Plans') {
      void this.plans.refresh();
    }
    if (parts.has('executions') && this._section === 'Executions') {
      void this.executions.refresh();
    }
    const shown = this.artifact.detail;
    if (parts.has('cards') && this._artifactOpen && shown) {
      const touched = items.some(
        i => i.type === 'card' && i.name === shown.name && i.version === shown.version
      );
      if (touched) {
        void this.artifact.reload();
      }
    }
  }

  refreshAll(): void {
    this.showSection(this._section);
  }

  protected onAfterAttach(): void {
    this._live.start();
  }

  protected onBeforeDetach(): void {
    this._live.stop();
  }

  dispose(): void {
    this._live.stop();
    super.dispose();
  }

  private _nav: HTMLElement;
  private _stack: StackedPanel;
  private _section: Section = 'Search';
  private _artifactOpen = false;
  private _live: LiveLoop;
}
