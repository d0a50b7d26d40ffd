/** Small formatting helpers shared by the sidebar and the run view. */

/** An element with classes and text (no HTML parsing: values from the server stay text). */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className = '',
  text = ''
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text) {
    node.textContent = text;
  }
  return node;
}

/** "2026-11-30 12:34" from an ISO time stamp (UTC, as the audit trail stores it). */
export function when(iso: string | null): string {
  return iso ? iso.slice(0, 16).replace('T', ' ') : '';
}

/** A state or status as a badge whose colour comes from the theme (see style/base.css). */
export function badge(text: string): HTMLSpanElement {
  const kind = text.toLowerCase().replace(/[^a-z]+/g, '-');
  return el('span', `mlops-badge mlops-badge-${kind}`, text);
}

export function valueText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}
