/**
 * Building DOM for the views: text is always set as text (never parsed as HTML), so
 * names, partitions and errors from the catalog cannot inject markup.
 *
 *     h('span', { class: 'jp-nbripple-ref' }, version.ref)
 */

export type Child = Node | string | null | undefined | false;

export interface IAttrs {
  class?: string;
  title?: string;
  [name: string]: string | undefined;
}

/** An element with attributes and children (strings become text nodes). */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: IAttrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined) {
      continue;
    }
    if (name === 'class') {
      el.className = value;
    } else {
      el.setAttribute(name, value);
    }
  }
  append(el, ...children);
  return el;
}

export function append(el: HTMLElement, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    el.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
  }
}

/** Replace every child of `el`. */
export function replaceChildren(el: HTMLElement, ...children: Child[]): void {
  while (el.firstChild) {
    el.removeChild(el.firstChild);
  }
  append(el, ...children);
}

/** A button that runs `onClick`. */
export function button(
  label: string,
  onClick: (event: MouseEvent) => void,
  attrs: IAttrs = {}
): HTMLButtonElement {
  const el = h('button', { type: 'button', class: 'jp-nbripple-button', ...attrs }, label);
  el.addEventListener('click', onClick);
  return el;
}
