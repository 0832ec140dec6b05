// Building elements. Data only ever becomes text nodes or attribute values, never markup: names, tags
// and messages are whatever a user typed.

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  el.append(...children.flat().filter((c) => c != null && c !== false).map((c) => (c instanceof Node ? c : String(c))));
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);

export function skeletonRows(tbody, columns, count = 6) {
  tbody.replaceChildren(
    ...Array.from({ length: count }, () =>
      h('tr', { class: 'skeleton', 'aria-hidden': 'true' }, ...Array.from({ length: columns }, () => h('td')))),
  );
  tbody.setAttribute('aria-busy', 'true');
}

export function emptyRow(tbody, columns, text) {
  tbody.replaceChildren(h('tr', {}, h('td', { class: 'empty', colspan: columns, text })));
  tbody.removeAttribute('aria-busy');
}

export function fillRows(tbody, rows) {
  tbody.replaceChildren(...rows);
  tbody.removeAttribute('aria-busy');
}

export function statusPill(status) {
  return h('span', { class: `status ${status}`, 'data-testid': 'status', text: status.replaceAll('_', ' ') });
}

export function tagList(tags) {
  const entries = Object.entries(tags ?? {});
  if (!entries.length) return '—';
  return entries.map(([name, value]) => h('span', { class: 'tag', text: `${name}=${value}` }));
}

// The page between two pages of a listing: Previous/Next buttons and "Rows 101–200".
export function updatePager(pager, { offset, limit, count }) {
  pager.querySelector('[data-action="prev"]').disabled = offset === 0;
  pager.querySelector('[data-action="next"]').disabled = count < limit;
  pager.querySelector('.pager-info').textContent = count ? `Rows ${offset + 1}–${offset + count}` : '';
}
