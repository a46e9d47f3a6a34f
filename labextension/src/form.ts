/**
 * The launch form: one for a plan's Launch…, an execution's Relaunch… and a notebook's
 * Run with nbripple. Each parameter and input is pre-filled with what the run would use
 * now (the smart default resolved by the server, saying which version it picked), and
 * each may be overridden: a parameter by typing a value of its type, an input by
 * picking one of its artifact's versions or typing a ref or query.
 *
 * Only what the user changed is sent: a field left as it was keeps the server's own
 * rule (a plan's trigger query is resolved when the run starts; a relaunch resolves
 * the inputs its original did not pin again). A refused request keeps the form, and
 * everything typed in it, open with the server's message.
 *
 *     const form = new LaunchForm({
 *       title: 'Launch predict', submitLabel: 'Launch',
 *       load: () => api.planForm('predict'),
 *       submit: parameters => api.launchPlan('predict', parameters),
 *       done: execution => openExecution(execution.id), cancel: () => form.dispose()
 *     });
 */
import { Notification } from '@jupyterlab/apputils';

import { h, replaceChildren } from './dom';
import { partitionText, timeText } from './format';
import { IExecutionRow, IFormField, ILaunchForm } from './request';

// -- what is typed, and what is sent (pure functions, unit-tested) ----------------------

/** The value `text` stands for, or why it cannot be one. */
export type Parsed = { ok: true; value: unknown } | { ok: false; error: string };

const INTEGER = /^[+-]?\d+$/;
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
/** `name@3`, `name`, `name?k=v`, or the same as an `nbripple://` URI. */
const REF = /^(nbripple:\/\/)?([A-Za-z_][\w.-]*)(@\d+)?(\?\S*)?$/;

/** A value as the text of its field ('' for null). */
export function valueText(value: unknown): string {
  if (value === null || value === undefined) {
    return '';
  }
  if (typeof value === 'string') {
    return value;
  }
  if (typeof value === 'number' || typeof value === 'boolean') {
    return String(value);
  }
  return JSON.stringify(value);
}

/** What a field shows when the form opens: the value the run would use now. */
export function initialText(field: IFormField): string {
  return valueText(field.value);
}

function article(word: string): string {
  return /^[aeiou]/.test(word) ? `an ${word}` : `a ${word}`;
}

/** The artifact name a ref or query names (null when `text` is none). */
export function refArtifact(text: string): string | null {
  const match = REF.exec(text.trim());
  return match ? match[2] : null;
}

/**
 * Read what was typed into `field`: a value of its type (an integer, a number, true or
 * false, JSON for arrays and objects, text for strings; for a parameter whose default is
 * no literal, JSON if it is JSON, else the text), or a ref or query of its artifact.
 */
export function parseField(field: IFormField, text: string): Parsed {
  const trimmed = text.trim();
  if (field.input) {
    if (!trimmed) {
      return field.optional
        ? { ok: true, value: null }
        : {
            ok: false,
            error: `pick a version of ${field.artifact ?? 'the artifact'}, or type a ref`
          };
    }
    const name = refArtifact(trimmed);
    if (name === null) {
      return {
        ok: false,
        error: `not a ref: type ${field.artifact ?? 'name'}@3, or a query such as nbripple://${field.artifact ?? 'name'}?key=value`
      };
    }
    if (field.artifact && name !== field.artifact) {
      return {
        ok: false,
        error: `${field.name} takes a version of ${field.artifact}, not of ${name}`
      };
    }
    return { ok: true, value: trimmed };
  }
  const wanted = field.type;
  const fail = (example: string): Parsed => ({
    ok: false,
    error: `${field.name} takes ${article(wanted ?? 'value')}, e.g. ${example}`
  });
  switch (wanted) {
    case 'integer': {
      if (!INTEGER.test(trimmed)) {
        return fail('3');
      }
      const value = Number(trimmed);
      return Number.isSafeInteger(value)
        ? { ok: true, value }
        : { ok: false, error: `${trimmed} is too large a number` };
    }
    case 'number': {
      const value = Number(trimmed);
      return NUMBER.test(trimmed) && isFinite(value) ? { ok: true, value } : fail('0.5');
    }
    case 'boolean': {
      const lower = trimmed.toLowerCase();
      return lower === 'true' || lower === 'false'
        ? { ok: true, value: lower === 'true' }
        : fail('true');
    }
    case 'string':
      return { ok: true, value: text };
    case 'array':
    case 'object': {
      let value: unknown;
      try {
        value = JSON.parse(trimmed);
      } catch {
        return fail(wanted === 'array' ? '[1, 2]' : '{"key": "value"}');
      }
      const isArray = Array.isArray(value);
      const fits =
        wanted === 'array' ? isArray : value !== null && typeof value === 'object' && !isArray;
      return fits ? { ok: true, value } : fail(wanted === 'array' ? '[1, 2]' : '{"key": "value"}');
    }
    default: {
      // no literal default: JSON when it is JSON, Python's spellings, else the text
      if (!trimmed) {
        return { ok: true, value: null };
      }
      try {
        return { ok: true, value: JSON.parse(trimmed) };
      } catch {
        const python: Record<string, unknown> = { True: true, False: false, None: null };
        return trimmed in python ? { ok: true, value: python[trimmed] } : { ok: true, value: text };
      }
    }
  }
}

/**
 * The request body's parameters: each field whose text changed, read; or what is wrong
 * (also a required input left empty because nothing matches it now).
 */
export function buildParameters(
  fields: IFormField[],
  texts: Record<string, string>
): { parameters: Record<string, unknown>; errors: Record<string, string> } {
  const parameters: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  for (const field of fields) {
    const text = texts[field.name];
    if (text === undefined || text === initialText(field)) {
      if (field.input && !field.optional && !initialText(field) && !text) {
        errors[field.name] =
          `nothing matches ${field.query ?? field.declared} now: pick a version of ${field.artifact ?? 'the artifact'}, or type a ref`;
      }
      continue;
    }
    const parsed = parseField(field, text);
    if (parsed.ok) {
      parameters[field.name] = parsed.value;
    } else {
      errors[field.name] = parsed.error;
    }
  }
  return { parameters, errors };
}

/** The parameter or input a server message is about (`parameter 'x'`, `input 'x'`). */
export function fieldOfMessage(message: string, names: string[]): string | null {
  const match = /\b(?:parameter|input) '([^']+)'/.exec(message);
  return match && names.includes(match[1]) ? match[1] : null;
}

const SOURCES: Record<string, string> = {
  notebook: 'the notebook’s default',
  plan: 'set by the plan',
  trigger: 'the plan’s trigger',
  execution: 'given to the original run'
};

/** Where a field's pre-filled value comes from, and which version an input picked. */
export function fieldHint(field: IFormField): string {
  const parts: string[] = [];
  if (field.input) {
    const query = field.query ?? field.declared;
    if (field.value) {
      // a pinned ref picks itself; a query, its newest match
      parts.push(
        /@\d+$/.test(query)
          ? `picked ${field.value}`
          : `picked ${field.value}: the newest of ${query}`
      );
    } else if (field.problem) {
      parts.push(field.problem);
    } else {
      parts.push(`nothing matches ${query} yet${field.optional ? ' (optional: None)' : ''}`);
    }
    parts.push(SOURCES[field.source] ?? field.source);
  } else {
    parts.push(
      `${SOURCES[field.source] ?? field.source}${field.source === 'notebook' ? `: ${field.declared}` : ''}`
    );
  }
  if (field.previous !== undefined && valueText(field.previous) !== initialText(field)) {
    parts.push(`the original ran with ${valueText(field.previous) || 'None'}`);
  }
  return parts.join(' · ');
}

// -- the form ---------------------------------------------------------------------------

export interface ILaunchFormOptions {
  /** The heading: `Launch predict`, `Relaunch 1a2b3c4d`, `Run report.ipynb`. */
  title: string;
  /** The submit button's label. */
  submitLabel: string;
  load: () => Promise<ILaunchForm>;
  submit: (parameters: Record<string, unknown>) => Promise<IExecutionRow>;
  /** The run started (the form is disposed just after). */
  done: (execution: IExecutionRow) => void;
  /** Cancel (or Escape) was pressed, or the form closed on a load error. */
  cancel: () => void;
}

const OTHER = ' other'; // no ref has a space
let formCount = 0;

/** A launch form as a DOM node, to be placed in a view (the plans, the executions). */
export class LaunchForm {
  constructor(private readonly _options: ILaunchFormOptions) {
    this._id = `jp-nbripple-form-${++formCount}`;
    this.node = h('form', {
      class: 'jp-nbripple-form',
      'data-state': 'loading',
      'aria-label': _options.title,
      novalidate: ''
    });
    this.node.addEventListener('submit', event => {
      event.preventDefault();
      void this.submit();
    });
    this.node.addEventListener('keydown', event => {
      if (event.key === 'Escape') {
        event.preventDefault();
        event.stopPropagation();
        this._options.cancel();
      }
    });
    this._error = h('div', {
      class: 'jp-nbripple-form-error jp-nbripple-form-message',
      role: 'alert'
    });
    replaceChildren(
      this.node,
      h('div', { class: 'jp-nbripple-subtitle' }, _options.title),
      h('div', { class: 'jp-nbripple-status', role: 'status' }, 'Loading the form…')
    );
  }

  readonly node: HTMLFormElement;

  /** The form as the server gave it (null until loaded). */
  get form(): ILaunchForm | null {
    return this._form;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** Fetch the form and show it (or why it cannot be shown, with a Close button). */
  async load(): Promise<void> {
    try {
      this._form = await this._options.load();
    } catch (error) {
      if (this._disposed) {
        return;
      }
      this.node.dataset.state = 'error';
      this._error.textContent = (error as Error).message;
      const close = h('button', { type: 'button', class: 'jp-nbripple-button' }, 'Close');
      close.addEventListener('click', () => this._options.cancel());
      replaceChildren(
        this.node,
        h('div', { class: 'jp-nbripple-subtitle' }, this._options.title),
        this._error,
        h('div', { class: 'jp-nbripple-row' }, close)
      );
      close.focus();
      return;
    }
    if (!this._disposed) {
      this.render(this._form);
    }
  }

  /** Show `form`'s fields (each pre-filled) and the buttons. */
  render(form: ILaunchForm): void {
    this._form = form;
    this._rows.clear();
    const fields = [...form.parameters, ...form.inputs];
    const section = (legend: string, items: IFormField[]) =>
      items.length
        ? h(
            'fieldset',
            { class: 'jp-nbripple-form-section' },
            h('legend', {}, legend),
            ...items.map(f => this._row(f))
          )
        : null;
    this._submit = h(
      'button',
      { type: 'submit', class: 'jp-nbripple-button jp-mod-accept jp-nbripple-form-submit' },
      this._options.submitLabel
    );
    const cancel = h(
      'button',
      { type: 'button', class: 'jp-nbripple-button jp-nbripple-form-cancel' },
      'Cancel'
    );
    cancel.addEventListener('click', () => this._options.cancel());
    replaceChildren(
      this.node,
      h('div', { class: 'jp-nbripple-subtitle' }, this._options.title),
      h(
        'div',
        { class: 'jp-nbripple-meta' },
        h('span', { title: form.notebook }, form.path ?? form.notebook),
        h('span', {}, `kernel ${form.kernel_name}`)
      ),
      fields.length
        ? null
        : h(
            'div',
            { class: 'jp-nbripple-status' },
            'This notebook has no parameters cell: it runs as it is.'
          ),
      section('Parameters', form.parameters),
      section('Inputs', form.inputs),
      this._error,
      h('div', { class: 'jp-nbripple-row' }, this._submit, cancel)
    );
    this.node.dataset.state = 'ready';
    const first = this.node.querySelector<HTMLElement>('input, select, textarea');
    (first ?? this._submit).focus();
  }

  /** What each field holds now, by name. */
  texts(): Record<string, string> {
    const texts: Record<string, string> = {};
    for (const [name, row] of this._rows) {
      texts[name] = row.text();
    }
    return texts;
  }

  /** Validate, then send what changed; on a refusal keep everything and say why. */
  async submit(): Promise<void> {
    const form = this._form;
    if (!form || this.node.dataset.state === 'submitting') {
      return;
    }
    const fields = [...form.parameters, ...form.inputs];
    const { parameters, errors } = buildParameters(fields, this.texts());
    for (const [name, row] of this._rows) {
      row.setError(errors[name] ?? null);
    }
    const invalid = Object.keys(errors);
    if (invalid.length) {
      this._error.textContent = `Check ${invalid.join(', ')}.`;
      this._rows.get(invalid[0])?.focus();
      return;
    }
    this._error.textContent = '';
    this.node.dataset.state = 'submitting';
    this._submit?.setAttribute('disabled', '');
    let execution: IExecutionRow;
    try {
      execution = await this._options.submit(parameters);
    } catch (error) {
      if (this._disposed) {
        return;
      }
      const message = (error as Error).message;
      this.node.dataset.state = 'ready';
      this._submit?.removeAttribute('disabled');
      this._error.textContent = message;
      const name = fieldOfMessage(
        message,
        fields.map(f => f.name)
      );
      if (name) {
        this._rows.get(name)?.setError(message);
        this._rows.get(name)?.focus();
      }
      Notification.error(`${this._options.title}: ${message}`, { autoClose: 8000 });
      return;
    }
    this.node.dataset.state = 'done';
    this._options.done(execution);
  }

  dispose(): void {
    this._disposed = true;
    this.node.remove();
  }

  private _row(field: IFormField): HTMLElement {
    const row = field.input ? new InputRow(field, this._id) : new ParameterRow(field, this._id);
    this._rows.set(field.name, row);
    return row.node;
  }

  private _id: string;
  private _form: ILaunchForm | null = null;
  private _rows = new Map<string, IRow>();
  private _error: HTMLElement;
  private _submit: HTMLButtonElement | null = null;
  private _disposed = false;
}

// -- the rows ---------------------------------------------------------------------------

interface IRow {
  readonly node: HTMLElement;
  text(): string;
  setError(message: string | null): void;
  focus(): void;
}

/** The label, hint and error line every row has; `control` is what is typed into. */
abstract class Row implements IRow {
  constructor(
    protected readonly field: IFormField,
    formId: string,
    kind: string
  ) {
    const id = `${formId}-${field.name}`;
    this.controlId = id;
    this._hint = h('div', { class: 'jp-nbripple-form-hint', id: `${id}-hint` }, fieldHint(field));
    this._errorLine = h('div', {
      class: 'jp-nbripple-form-error',
      id: `${id}-error`,
      role: 'alert'
    });
    this.node = h(
      'div',
      { class: 'jp-nbripple-form-field', 'data-name': field.name, 'data-changed': 'false' },
      h(
        'label',
        { for: id, class: 'jp-nbripple-form-label' },
        h('span', { class: 'jp-nbripple-ref' }, field.name),
        h('span', { class: 'jp-nbripple-kind' }, kind)
      )
    );
  }

  readonly node: HTMLElement;
  protected readonly controlId: string;

  abstract text(): string;
  abstract focus(): void;

  /** Put the hint and the error line after the control, and wire the change marker. */
  protected finish(control: HTMLElement, ...more: HTMLElement[]): void {
    control.setAttribute('aria-describedby', `${this.controlId}-hint ${this.controlId}-error`);
    this.node.append(control, ...more, this._hint, this._errorLine);
    this.node.addEventListener('input', () => this.changed());
    this.node.addEventListener('change', () => this.changed());
  }

  setError(message: string | null): void {
    this._errorLine.textContent = message ?? '';
    this.node.dataset.invalid = message ? 'true' : 'false';
    this.control()?.setAttribute('aria-invalid', message ? 'true' : 'false');
  }

  protected abstract control(): HTMLElement | null;

  private changed(): void {
    this.node.dataset.changed = String(this.text() !== initialText(this.field));
    if (this.node.dataset.invalid === 'true') {
      this.setError(null);
    }
  }

  private _hint: HTMLElement;
  private _errorLine: HTMLElement;
}

/** A parameter: a checkbox for a boolean, else a text box (a textarea for JSON). */
class ParameterRow extends Row {
  constructor(field: IFormField, formId: string) {
    super(field, formId, field.type ?? 'any value');
    const initial = initialText(field);
    if (field.type === 'boolean') {
      this._box = h('input', {
        type: 'checkbox',
        id: this.controlId,
        name: field.name,
        class: 'jp-nbripple-form-input'
      });
      this._box.checked = field.value === true;
      this.finish(this._box);
      return;
    }
    const multiline = field.type === 'array' || field.type === 'object' || initial.length > 60;
    const placeholder = field.value === null ? field.declared : undefined;
    this._text = multiline
      ? h('textarea', {
          id: this.controlId,
          name: field.name,
          rows: '2',
          class: 'jp-mod-styled jp-nbripple-form-input',
          placeholder
        })
      : h('input', {
          type: 'text',
          id: this.controlId,
          name: field.name,
          class: 'jp-mod-styled jp-nbripple-form-input',
          placeholder,
          inputmode:
            field.type === 'integer' ? 'numeric' : field.type === 'number' ? 'decimal' : undefined,
          spellcheck: 'false'
        });
    this._text.value = initial;
    this.finish(this._text);
  }

  text(): string {
    if (this._box) {
      return this._box.checked ? 'true' : 'false';
    }
    return this._text?.value ?? '';
  }

  focus(): void {
    (this._box ?? this._text)?.focus();
  }

  protected control(): HTMLElement | null {
    return this._box ?? this._text;
  }

  private _box: HTMLInputElement | null = null;
  private _text: HTMLInputElement | HTMLTextAreaElement | null = null;
}

/** An input: a select of its artifact's versions (the picked one first selected), and
 * "Other ref or query…", which shows a text box for any ref or query. */
class InputRow extends Row {
  constructor(field: IFormField, formId: string) {
    super(field, formId, field.artifact ?? 'artifact');
    const current = initialText(field);
    this._select = h('select', {
      id: this.controlId,
      name: field.name,
      class: 'jp-mod-styled jp-nbripple-form-input'
    });
    if (!current) {
      this._select.append(
        h(
          'option',
          { value: '' },
          field.optional ? '(none: the input is optional)' : '(pick a version)'
        )
      );
    }
    const choices = [...(field.choices ?? [])];
    if (current && !choices.some(c => c.ref === current)) {
      this._select.append(h('option', { value: current }, current));
    }
    for (const choice of choices) {
      const details = [partitionText(choice.partitions), timeText(choice.created_at)]
        .filter(Boolean)
        .join(' · ');
      this._select.append(
        h('option', { value: choice.ref }, details ? `${choice.ref} — ${details}` : choice.ref)
      );
    }
    this._select.append(h('option', { value: OTHER }, 'Other ref or query…'));
    this._select.value = current;
    this._other = h('input', {
      type: 'text',
      class: 'jp-mod-styled jp-nbripple-form-input jp-nbripple-form-other',
      name: `${field.name}-ref`,
      'aria-label': `${field.name}: a ref or query`,
      placeholder: field.query ?? `${field.artifact ?? 'name'}@3`,
      spellcheck: 'false'
    });
    this._other.hidden = true;
    this._select.addEventListener('change', () => {
      const other = this._select.value === OTHER;
      this._other.hidden = !other;
      if (other) {
        if (!this._other.value) {
          this._other.value = field.query ?? current;
        }
        this._other.focus();
      }
    });
    this.finish(this._select, this._other);
  }

  text(): string {
    return this._select.value === OTHER ? this._other.value : this._select.value;
  }

  focus(): void {
    (this._select.value === OTHER ? this._other : this._select).focus();
  }

  protected control(): HTMLElement | null {
    return this._select.value === OTHER ? this._other : this._select;
  }

  private _select: HTMLSelectElement;
  private _other: HTMLInputElement;
}
