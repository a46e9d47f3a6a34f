/**
 * The lineage view: the graph around a version, drawn by cytoscape.js with dagre's
 * layered left-to-right layout. Clicking a version node re-centres the graph on it;
 * clicking an execution node opens that execution.
 *
 * The graph's colours come from JupyterLab's theme variables (read when drawn), so it
 * follows the light and dark themes.
 */
import cytoscape from 'cytoscape';
import dagre from 'cytoscape-dagre';
import { Signal, ISignal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { h } from './dom';
import { Latest } from './latest';
import { ILineage, NbrippleApi } from './request';

cytoscape.use(dagre);

export type Direction = 'both' | 'up' | 'down';
export type Depth = number | 'all';

/** The layered layout, left to right (inputs on the left). */
export const LAYOUT = {
  name: 'dagre',
  rankDir: 'LR',
  nodeSep: 18,
  rankSep: 60,
  animate: false,
  fit: true,
  padding: 16
} as unknown as cytoscape.LayoutOptions;

function themeValue(name: string, fallback: string): string {
  const value = getComputedStyle(document.body).getPropertyValue(name).trim();
  return value || fallback;
}

/** The stylesheet, from the current theme's variables. */
export function graphStyle(): cytoscape.StylesheetJson {
  const fg = themeValue('--jp-ui-font-color1', 'black');
  const bg = themeValue('--jp-layout-color2', 'white');
  const border = themeValue('--jp-border-color1', 'gray');
  const accent = themeValue('--jp-brand-color1', 'blue');
  const error = themeValue('--jp-error-color1', 'red');
  const font = themeValue('--jp-ui-font-family', 'sans-serif');
  return [
    {
      selector: 'node',
      style: {
        label: 'data(label)',
        color: fg,
        'font-family': font,
        'font-size': 11,
        'text-valign': 'center',
        'text-halign': 'center',
        'text-wrap': 'ellipsis',
        'text-max-width': '150px',
        width: 160,
        height: 30,
        'background-color': bg,
        'border-width': 1,
        'border-color': border
      }
    },
    { selector: 'node.version', style: { shape: 'round-rectangle' } },
    { selector: 'node.execution', style: { shape: 'ellipse', 'border-style': 'dashed' } },
    { selector: 'node.root', style: { 'border-width': 3, 'border-color': accent } },
    { selector: 'node.failed', style: { 'border-color': error } },
    { selector: 'node.missing', style: { opacity: 0.5 } },
    {
      selector: 'edge',
      style: {
        width: 1.5,
        'line-color': border,
        'target-arrow-color': border,
        'target-arrow-shape': 'triangle',
        'curve-style': 'bezier'
      }
    },
    { selector: 'edge.triggered', style: { 'line-style': 'dashed' } }
  ];
}

/** cytoscape's elements for a lineage answer (the server's own shape). */
export function elementsOf(lineage: ILineage): cytoscape.ElementDefinition[] {
  return [
    ...lineage.elements.nodes.map(n => ({ group: 'nodes' as const, ...n })),
    ...lineage.elements.edges.map(e => ({ group: 'edges' as const, ...e }))
  ];
}

export class LineageView extends Widget {
  constructor(private readonly _api: NbrippleApi) {
    super();
    this.addClass('jp-nbripple-lineage');
    this._depth = h('select', { class: 'jp-mod-styled', 'aria-label': 'Depth' });
    for (const depth of ['1', '2', '3', '5', 'all']) {
      this._depth.appendChild(h('option', { value: depth }, `depth ${depth}`));
    }
    this._direction = h('select', { class: 'jp-mod-styled', 'aria-label': 'Direction' });
    for (const [value, label] of [
      ['both', 'up and down'],
      ['up', 'upstream'],
      ['down', 'downstream']
    ]) {
      this._direction.appendChild(h('option', { value }, label));
    }
    this._depth.addEventListener('change', () => void this.refresh());
    this._direction.addEventListener('change', () => void this.refresh());
    this._status = h('div', { class: 'jp-nbripple-status', role: 'status' });
    this._canvas = h('div', { class: 'jp-nbripple-graph' });
    this.node.append(
      h('div', { class: 'jp-nbripple-row' }, this._depth, this._direction),
      this._status,
      this._canvas
    );
  }

  /** An execution node was clicked (its id). */
  get executionClicked(): ISignal<this, string> {
    return this._executionClicked;
  }

  /** The ref the graph is centred on. */
  get centre(): string | null {
    return this._centre;
  }

  /** The cytoscape instance (tests and benchmarks read it). */
  get cy(): cytoscape.Core | null {
    return this._cy;
  }

  /** Centre the graph on `ref` and draw it. */
  async centreOn(ref: string): Promise<void> {
    this._centre = ref;
    await this.refresh();
  }

  async refresh(): Promise<void> {
    if (!this._centre) {
      return;
    }
    const depthValue = this._depth.value;
    const depth: Depth = depthValue === 'all' ? 'all' : Number(depthValue);
    const direction = this._direction.value as Direction;
    this.node.dataset.state = 'loading';
    try {
      const ref = this._centre;
      const lineage = await this._latest.run(signal =>
        this._api.lineage(ref, depth, direction, signal)
      );
      if (lineage === undefined) {
        return;
      }
      this.draw(lineage);
    } catch (error) {
      this._status.textContent = (error as Error).message;
      this.node.dataset.state = 'error';
    }
  }

  /** Draw a lineage answer (replacing the graph drawn before). */
  draw(lineage: ILineage): void {
    const started = performance.now();
    this._cy?.destroy();
    const cy = cytoscape({
      container: this._canvas,
      elements: elementsOf(lineage),
      style: graphStyle(),
      layout: LAYOUT,
      minZoom: 0.1,
      maxZoom: 3,
      wheelSensitivity: 0.3
    });
    cy.on('tap', 'node', event => {
      const data = event.target.data();
      if (data.type === 'execution' && data.execution_id) {
        this._executionClicked.emit(data.execution_id as string);
      } else if (data.type === 'version' && data.ref && !data.missing) {
        void this.centreOn(data.ref as string);
      }
    });
    this._cy = cy;
    const nodes = lineage.elements.nodes.length;
    this._status.textContent = `${lineage.root.replace(/^version:/, '')}: ${nodes} node${
      nodes === 1 ? '' : 's'
    }`;
    this.node.dataset.centre = this._centre ?? '';
    this.node.dataset.layoutMs = String(Math.round(performance.now() - started));
    this.node.dataset.state = 'ready';
  }

  protected onResize(): void {
    this._cy?.resize();
  }

  protected onAfterShow(): void {
    if (this._cy) {
      this._cy.resize();
      this._cy.fit(undefined, 16);
    }
  }

  dispose(): void {
    this._latest.cancel();
    this._cy?.destroy();
    this._cy = null;
    super.dispose();
  }

  private _depth: HTMLSelectElement;
  private _direction: HTMLSelectElement;
  private _status: HTMLElement;
  private _canvas: HTMLElement;
  private _centre: string | null = null;
  private _cy: cytoscape.Core | null = null;
  private _latest = new Latest();
  private _executionClicked = new Signal<this, string>(this);
}
