// Pages and their state live in the location hash (#keys?user=3&status=active), so Back and Forward work
// and a filtered view can be bookmarked.

export const PAGES = ['overview', 'keys', 'users', 'usage'];

export function parseHash(hash = location.hash) {
  const [name, search = ''] = hash.replace(/^#/, '').split('?');
  return { name: PAGES.includes(name) ? name : 'overview', params: new URLSearchParams(search) };
}

export function hashOf(name, params = {}) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    for (const v of Array.isArray(value) ? value : [value]) {
      if (v != null && v !== '' && !(key === 'offset' && Number(v) === 0)) q.append(key, String(v));
    }
  }
  const search = q.toString();
  return `#${name}${search ? `?${search}` : ''}`;
}

// Going to the view already shown (Apply with the same filter) reloads it: the hash does not change, so
// the browser fires no hashchange of its own.
export function navigate(name, params = {}) {
  const hash = hashOf(name, params);
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = hash;
}
