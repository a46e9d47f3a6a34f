/**
 * nbripple and the notebooks of JupyterLab:
 *
 * - **Open notebook** on an execution: its executed notebook comes from the REST API
 *   (`GET executions/{id}/notebook`, never a path on the server's disk: the API may be
 *   a forwarded `nbripple serve` on another machine), is saved through JupyterLab's
 *   contents API to `nbripple-runs/<id>.ipynb` in the Jupyter root (an older copy of
 *   the same execution is replaced) and opened in a tab, as jupyter-scheduler brings
 *   job outputs into the workspace. The copy is untrusted, as any notebook written by
 *   a run is: JupyterLab sanitizes its HTML outputs and runs none of its scripts.
 * - **Run with nbripple** (`nbripple:run-notebook`) on a notebook file of the file
 *   browser (its context menu), the current notebook or a path: the parameters form.
 * - **Show in nbripple** (`nbripple:show-artifact`) on an artifact reference selected
 *   (or under the cursor) in a cell or file editor: the version's view in the panel.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { ICommandPalette, InputDialog, Notification } from '@jupyterlab/apputils';
import { CodeEditor } from '@jupyterlab/codeeditor';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { INotebookTracker } from '@jupyterlab/notebook';
import { Contents } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';

import { INotebookRequest } from './executions';
import { NbrippleApi, NotebookWhich } from './request';

export namespace NotebookCommandIDs {
  export const runNotebook = 'nbripple:run-notebook';
  export const showArtifact = 'nbripple:show-artifact';
}

/** The folder of the Jupyter root where executed notebooks are saved to be opened. */
export const RUNS_DIR = 'nbripple-runs';

// -- executed notebooks -------------------------------------------------------------------

/** Where the copy of an execution's notebook goes: `nbripple-runs/<id>.ipynb`. */
export function notebookCopyPath(id: string, which: NotebookWhich = 'output'): string {
  if (!/^[A-Za-z0-9_-]+$/.test(id)) {
    throw new Error(`${JSON.stringify(id)} is not an execution id`);
  }
  return `${RUNS_DIR}/${id}${which === 'input' ? '-input' : ''}.ipynb`;
}

export interface INotebookOpener {
  api: NbrippleApi;
  contents: Contents.IManager;
  /** Open a file of the Jupyter root in a tab. */
  open(path: string): Promise<unknown>;
  /** Whether a tab already shows `path` (it is then only revealed: the copy of an
   * execution's notebook never changes). */
  isOpen?(path: string): boolean;
}

/** Bring execution `id`'s notebook into the Jupyter root and open it; returns its path. */
export async function openExecutionNotebook(
  opener: INotebookOpener,
  id: string,
  which: NotebookWhich = 'output'
): Promise<string> {
  const path = notebookCopyPath(id, which);
  if (!opener.isOpen?.(path)) {
    const content = await opener.api.executionNotebook(id, which);
    await opener.contents.save(RUNS_DIR, { type: 'directory' });
    await opener.contents.save(path, { type: 'notebook', format: 'json', content });
  }
  await opener.open(path);
  return path;
}

/** The opener of a JupyterLab app: its contents API and `docmanager:open`. */
export function notebookOpener(
  app: JupyterFrontEnd,
  api: NbrippleApi,
  docManager: IDocumentManager | null
): (request: INotebookRequest) => Promise<void> {
  const opener: INotebookOpener = {
    api,
    contents: app.serviceManager.contents,
    open: path => app.commands.execute('docmanager:open', { path }),
    isOpen: path => !!docManager?.findWidget(path)
  };
  return async ({ id, which }) => {
    try {
      await openExecutionNotebook(opener, id, which);
    } catch (error) {
      const what = which === 'input' ? 'the notebook it ran' : 'the executed notebook';
      Notification.error(
        `nbripple: cannot open ${what} of ${id.slice(0, 8)}: ${(error as Error).message}`
      );
    }
  };
}

// -- artifact references in editors --------------------------------------------------------

const REF_CHARS = /[\w.\-@:/?=&%+]/;
const PINNED = /^[A-Za-z_][\w.-]*@\d+$/;
const QUERY_URI = /^nbripple:\/\/[A-Za-z_][\w.-]*(@\d+)?(\?\S*)?$/;

/** `text` without the quotes, brackets and punctuation around it. */
function bare(text: string): string {
  return text.trim().replace(/^[\s'"`([{<]+|[\s'"`)\]}>,;.]+$/g, '');
}

/**
 * The artifact reference in `text` between `start` and `end` (a selection), or around
 * `start` (the cursor) when they are equal: `nbripple://name?k=v`, `nbripple://name@3`
 * or `name@3`. A selection is taken as it is (any ref or query the server resolves);
 * around the cursor only a pinned ref or an `nbripple://` URI counts. Null: none.
 *
 *     refAt('m = nr.load("blessed_model@3")', 15) // 'blessed_model@3'
 */
export function refAt(text: string, start: number, end = start): string | null {
  if (end !== start) {
    const selected = bare(text.slice(Math.min(start, end), Math.max(start, end)));
    return selected && !/\s/.test(selected) ? selected : null;
  }
  let from = start;
  let to = start;
  while (from > 0 && REF_CHARS.test(text[from - 1])) {
    from--;
  }
  while (to < text.length && REF_CHARS.test(text[to])) {
    to++;
  }
  const word = bare(text.slice(from, to));
  return PINNED.test(word) || QUERY_URI.test(word) ? word : null;
}

/** The ref selected (or under the cursor) in `editor`. */
export function editorRef(editor: CodeEditor.IEditor): string | null {
  const selection = editor.getSelection();
  const text = editor.model.sharedModel.getSource();
  return refAt(text, editor.getOffsetAt(selection.start), editor.getOffsetAt(selection.end));
}

// -- the commands ---------------------------------------------------------------------------

/** What the commands need of the sidebar. */
export interface INotebookCommandsTarget {
  reveal(): void;
  runNotebook(path: string): void;
  openRef(ref: string): Promise<void>;
}

export interface INotebookCommandsOptions {
  palette: ICommandPalette | null;
  docManager: IDocumentManager | null;
  fileBrowser: IFileBrowserFactory | null;
  notebooks: INotebookTracker | null;
}

/** Register Run with nbripple and Show in nbripple: context menus and the palette. */
export function registerNotebookCommands(
  app: JupyterFrontEnd,
  target: INotebookCommandsTarget,
  options: INotebookCommandsOptions
): void {
  const { commands } = app;
  const { docManager, fileBrowser, notebooks } = options;

  /** The notebook file selected in the file browser (its context menu's item). */
  const selectedNotebook = (): string | null => {
    const browser = fileBrowser?.tracker.currentWidget;
    if (!browser) {
      return null;
    }
    for (const item of browser.selectedItems()) {
      if (item.type === 'notebook') {
        return item.path;
      }
    }
    return null;
  };

  /** The path of the current widget, when it is a notebook document. */
  const currentNotebook = (): string | null => {
    const widget = app.shell.currentWidget;
    const context = widget ? docManager?.contextForWidget(widget) : undefined;
    return context && context.path.endsWith('.ipynb') ? context.path : null;
  };

  commands.addCommand(NotebookCommandIDs.runNotebook, {
    label: args =>
      args.fromFileBrowser ? 'Run with nbripple…' : 'nbripple: Run a Notebook with Parameters…',
    caption:
      'Run a notebook as an nbripple task: its parameters form, then a run recorded with its lineage',
    execute: async args => {
      let path =
        typeof args.path === 'string'
          ? args.path
          : args.fromFileBrowser
            ? selectedNotebook()
            : (currentNotebook() ?? selectedNotebook());
      if (!path) {
        const answer = await InputDialog.getText({
          title: 'Run a notebook with nbripple',
          label: 'Notebook path (relative to the Jupyter root)',
          placeholder: 'reports/daily.ipynb'
        });
        path = answer.button.accept ? answer.value?.trim() || null : null;
      }
      if (!path) {
        return;
      }
      const open = docManager?.findWidget(path);
      if (open?.context.model.dirty) {
        Notification.warning(
          `${path} has unsaved changes: nbripple runs the file as it is saved.`,
          {
            autoClose: 6000
          }
        );
      }
      target.reveal();
      target.runNotebook(path);
    }
  });

  /** The editor a Show in nbripple is about: the right-clicked cell's, else the current one. */
  const currentEditor = (fromContextMenu: boolean): CodeEditor.IEditor | null => {
    const widget = app.shell.currentWidget;
    const panel = notebooks?.currentWidget;
    if (panel && panel === widget) {
      const hit = fromContextMenu
        ? app.contextMenuHitTest(node => node.classList.contains('jp-Cell'))
        : undefined;
      const cell =
        (hit && panel.content.widgets.find(c => c.node === hit)) || panel.content.activeCell;
      return cell?.editor ?? null;
    }
    const editor = (widget as (Widget & { content?: { editor?: CodeEditor.IEditor } }) | null)
      ?.content?.editor;
    return editor && typeof editor.getSelection === 'function' ? editor : null;
  };

  commands.addCommand(NotebookCommandIDs.showArtifact, {
    label: args =>
      args.fromContextMenu
        ? 'Show in nbripple'
        : 'nbripple: Show the Artifact Reference in nbripple',
    caption:
      'Open the artifact version a reference (name@3, nbripple://name?key=value) names in the nbripple panel',
    execute: async args => {
      let ref = typeof args.ref === 'string' ? args.ref : null;
      if (!ref) {
        const editor = currentEditor(!!args.fromContextMenu);
        ref = editor ? editorRef(editor) : null;
      }
      if (!ref) {
        const answer = await InputDialog.getText({
          title: 'Show in nbripple',
          label: 'No artifact reference is selected: type one',
          placeholder: 'name@3, or nbripple://name?key=value'
        });
        ref = answer.button.accept ? answer.value?.trim() || null : null;
      }
      if (ref) {
        target.reveal();
        await target.openRef(ref);
      }
    }
  });

  app.contextMenu.addItem({
    command: NotebookCommandIDs.runNotebook,
    selector: '.jp-DirListing-item[data-file-type="notebook"]',
    args: { fromFileBrowser: true },
    rank: 60
  });
  for (const selector of [
    '.jp-Notebook .jp-Cell .jp-InputArea-editor',
    '.jp-FileEditor .jp-CodeMirrorEditor'
  ]) {
    app.contextMenu.addItem({
      command: NotebookCommandIDs.showArtifact,
      selector,
      args: { fromContextMenu: true },
      rank: 60
    });
  }
  if (options.palette) {
    for (const command of Object.values(NotebookCommandIDs)) {
      options.palette.addItem({ command, category: 'nbripple' });
    }
  }
}
