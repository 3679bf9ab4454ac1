// ui.js holds the small rendering helpers. Everything goes through textContent (never innerHTML),
// and visibility through the hidden attribute, so the page works under a strict CSP.

/** byId returns the element or throws, so a renamed id fails loudly instead of silently. */
export function byId(id, doc = globalThis.document) {
  const el = doc.getElementById(id);
  if (el === null) throw new Error(`missing element #${id}`);
  return el;
}

export function setText(id, text, doc = globalThis.document) {
  byId(id, doc).textContent = text;
}

export function show(id, visible = true, doc = globalThis.document) {
  byId(id, doc).hidden = !visible;
}

/**
 * formatCountdown renders milliseconds left as mm:ss (minutes may exceed 59), never negative.
 * It rounds up, like a kitchen timer: 00:00 means expired, and a tick landing exactly on a
 * second boundary does not show the same value twice.
 */
export function formatCountdown(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const minutes = String(Math.floor(total / 60)).padStart(2, '0');
  const seconds = String(total % 60).padStart(2, '0');
  return `${minutes}:${seconds}`;
}

/** formatClock renders a timestamp as a local wall-clock time. */
export function formatClock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

const STEP_STATUSES = new Set(['pending', 'in-progress', 'success', 'failed']);

/** renderSteps shows a Basiq job's steps as "title — status" list items. */
export function renderSteps(list, steps) {
  const doc = list.ownerDocument;
  const items = steps.map((step) => {
    const status = STEP_STATUSES.has(step?.status) ? step.status : 'pending';
    const item = doc.createElement('li');
    item.className = 'step';
    item.dataset.status = status;
    const title = doc.createElement('span');
    title.className = 'step-title';
    title.textContent = String(step?.title ?? 'step');
    const badge = doc.createElement('span');
    badge.className = 'step-status';
    badge.textContent = status;
    item.append(title, ' ', badge);
    return item;
  });
  list.replaceChildren(...items);
}

/** setMessage fills a message element; kind ('ok' | 'error' | 'info') only changes its colour. */
export function setMessage(id, text, kind = 'info', doc = globalThis.document) {
  const el = byId(id, doc);
  el.textContent = text;
  el.dataset.kind = kind;
}
