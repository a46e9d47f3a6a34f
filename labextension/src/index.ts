/**
 * The nbripple JupyterLab extension: the sidebar panel (left area, restored across
 * reloads) and its commands in the command palette.
 */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, ISanitizer, InputDialog, Sanitizer } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { INotebookTracker } from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';

import { notebookOpener, registerNotebookCommands } from './notebooks';
import { NbrippleSidebar } from './panel';
import { NbrippleApi } from './request';

import rippleSvg from '../style/ripple.svg';

export namespace CommandIDs {
  export const show = 'nbripple:show';
  export const search = 'nbripple:search';
  export const openArtifact = 'nbripple:open-artifact';
  export const plans = 'nbripple:plans';
  export const executions = 'nbripple:executions';
}

export const rippleIcon = new LabIcon({ name: 'nbripple:ripple', svgstr: rippleSvg });

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'nbripple:plugin',
  description:
    'The nbripple sidebar: search, artifacts, cards, lineage, launch plans and executions.',
  autoStart: true,
  optional: [
    ILayoutRestorer,
    ICommandPalette,
    ISanitizer,
    IDocumentManager,
    IFileBrowserFactory,
    INotebookTracker
  ],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    sanitizer: ISanitizer | null,
    docManager: IDocumentManager | null,
    fileBrowser: IFileBrowserFactory | null,
    notebooks: INotebookTracker | null
  ): void => {
    const api = new NbrippleApi(app.serviceManager.serverSettings);
    const sidebar = new NbrippleSidebar({
      api,
      sanitizer: sanitizer ?? new Sanitizer(),
      openNotebook: notebookOpener(app, api, docManager)
    });
    sidebar.title.icon = rippleIcon;
    sidebar.title.caption = 'nbripple';
    sidebar.title.label = 'nbripple';
    app.shell.add(sidebar, 'left', { rank: 600 });
    if (restorer) {
      restorer.add(sidebar, 'nbripple-sidebar');
    }

    const reveal = () => app.shell.activateById(sidebar.id);
    const { commands } = app;
    commands.addCommand(CommandIDs.show, {
      label: 'nbripple: Show the Sidebar',
      execute: () => reveal()
    });
    commands.addCommand(CommandIDs.search, {
      label: 'nbripple: Search Artifacts',
      execute: args => {
        reveal();
        sidebar.showSearch();
        if (typeof args.text === 'string') {
          sidebar.search.setText(args.text);
        }
        sidebar.search.focusText();
      }
    });
    commands.addCommand(CommandIDs.openArtifact, {
      label: 'nbripple: Open an Artifact Version…',
      execute: async args => {
        let ref = typeof args.ref === 'string' ? args.ref : null;
        if (!ref) {
          const answer = await InputDialog.getText({
            title: 'Open an artifact version',
            placeholder: 'name@3, name or nbripple://name?blessed=true'
          });
          ref = answer.button.accept ? answer.value : null;
        }
        if (ref) {
          reveal();
          await sidebar.openRef(ref);
        }
      }
    });
    commands.addCommand(CommandIDs.plans, {
      label: 'nbripple: Show Launch Plans',
      execute: () => {
        reveal();
        sidebar.showSection('Plans');
      }
    });
    commands.addCommand(CommandIDs.executions, {
      label: 'nbripple: Show Executions',
      execute: () => {
        reveal();
        sidebar.showSection('Executions');
      }
    });
    if (palette) {
      for (const command of Object.values(CommandIDs)) {
        palette.addItem({ command, category: 'nbripple' });
      }
    }

    // Run with nbripple (a notebook file) and Show in nbripple (an artifact reference)
    registerNotebookCommands(
      app,
      {
        reveal,
        runNotebook: path => sidebar.runNotebook(path),
        openRef: ref => sidebar.openRef(ref)
      },
      { palette, docManager, fileBrowser, notebooks }
    );
  }
};

export default plugin;
