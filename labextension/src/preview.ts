/**
 * The preview of the Object tab: a table's first rows as an HTML table, a directory's
 * file list, a value's short repr, or why there is none. Every cell, name and path is
 * set as text (through `h()`), never parsed as HTML.
 *
 *     holder.append(renderPreview(await api.preview('scores', 1)));
 */
import { h } from './dom';
import { sizeText } from './format';
import { IPreview, IPreviewFile, PreviewCell } from './request';

/** How many rows (or directory entries) the Object tab asks for. */
export const PREVIEW_ROWS = 20;

/** `1234567` → `1,234,567`. */
function count(n: number): string {
  return n.toLocaleString('en-US');
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${count(n)} ${n === 1 ? one : many}`;
}

/** One cell's text and class (null, numbers and text are styled apart). */
export function cellText(value: PreviewCell): { text: string; cls: string } {
  if (value === null) {
    return { text: 'null', cls: 'jp-nbripple-cell-null' };
  }
  if (typeof value === 'number') {
    return { text: String(value), cls: 'jp-nbripple-cell-number' };
  }
  if (typeof value === 'boolean') {
    return { text: String(value), cls: 'jp-nbripple-cell-bool' };
  }
  return { text: value, cls: 'jp-nbripple-cell-text' };
}

/** What the preview shows of a table, in words: `first 20 of 1,000 rows · 7 columns`. */
export function tableSummary(preview: IPreview): string {
  const shown = preview.rows?.length ?? 0;
  const total = preview.num_rows ?? shown;
  const columns = preview.columns?.length ?? 0;
  const columnsTotal = preview.columns_total ?? columns;
  const rows =
    shown === total ? plural(total, 'row') : `first ${count(shown)} of ${plural(total, 'row')}`;
  const cols =
    columns === columnsTotal
      ? plural(columnsTotal, 'column')
      : `first ${count(columns)} of ${plural(columnsTotal, 'column')}`;
  return `${rows} · ${cols}`;
}

function unverifiedNote(preview: IPreview): HTMLElement | null {
  return preview.verified === false && preview.preview === 'table'
    ? h(
        'div',
        { class: 'jp-nbripple-preview-note' },
        'Read in part, not checked against its hash (loading it checks it).'
      )
    : null;
}

/** A table's first rows: column names with their types, then one row per record. */
export function previewTable(preview: IPreview): HTMLElement {
  const columns = preview.columns ?? [];
  const head = h(
    'tr',
    {},
    ...columns.map(c =>
      h(
        'th',
        { title: `${c.name}: ${c.type}` },
        h('span', { class: 'jp-nbripple-column-name' }, c.name),
        h('span', { class: 'jp-nbripple-column-type' }, c.type)
      )
    )
  );
  const body = h(
    'tbody',
    {},
    ...(preview.rows ?? []).map(row =>
      h(
        'tr',
        {},
        ...row.map(value => {
          const { text, cls } = cellText(value);
          return h('td', { class: cls }, text);
        })
      )
    )
  );
  return h(
    'div',
    { class: 'jp-nbripple-preview-scroll' },
    h('table', { class: 'jp-nbripple-preview-table' }, h('thead', {}, head), body)
  );
}

function fileItem(entry: IPreviewFile): HTMLElement {
  return h(
    'li',
    { class: 'jp-nbripple-file', 'data-path': entry.path },
    h('span', { class: 'jp-nbripple-file-path' }, entry.path),
    entry.target !== undefined
      ? h('span', { class: 'jp-nbripple-file-size' }, `→ ${entry.target}`)
      : h('span', { class: 'jp-nbripple-file-size' }, sizeText(entry.size ?? null))
  );
}

/** The preview as DOM (built from text only). */
export function renderPreview(preview: IPreview): HTMLElement {
  const holder = h('div', { class: 'jp-nbripple-preview-body', 'data-preview': preview.preview });
  switch (preview.preview) {
    case 'table':
      holder.append(
        h('div', { class: 'jp-nbripple-preview-summary' }, tableSummary(preview)),
        previewTable(preview)
      );
      break;
    case 'files': {
      const files = preview.files ?? [];
      const total = preview.total ?? files.length;
      holder.append(
        h('div', { class: 'jp-nbripple-preview-summary' }, plural(total, 'entry', 'entries')),
        h(
          'ul',
          { class: 'jp-nbripple-files' },
          ...files.map(fileItem),
          preview.more
            ? h('li', { class: 'jp-nbripple-more' }, `and ${count(preview.more)} more`)
            : null
        )
      );
      break;
    }
    case 'value':
      holder.append(h('pre', { class: 'jp-nbripple-preview-repr' }, preview.repr ?? ''));
      break;
    default:
      holder.append(
        h(
          'div',
          { class: 'jp-nbripple-preview-none' },
          preview.message ?? `no preview for kind ${preview.kind}`
        )
      );
  }
  const note = unverifiedNote(preview);
  if (note) {
    holder.append(note);
  }
  return holder;
}
