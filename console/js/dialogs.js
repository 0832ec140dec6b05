// Modal <dialog>s: the browser traps focus inside, Escape closes them (the "cancel" event), and focus
// returns to the button that opened them.
import { $ } from './dom.js';
import { clearFormError, showFormError } from './notify.js';

export function wireCancelButtons() {
  for (const button of document.querySelectorAll('dialog [data-action="cancel"]')) {
    button.addEventListener('click', () => button.closest('dialog').close());
  }
}

export function closeAllDialogs() {
  for (const dialog of document.querySelectorAll('dialog[open]')) dialog.close();
}

// Runs `submit` when the dialog's form is submitted (button or Enter); the dialog stays open with the
// error shown if it throws.
export function onSubmit(form, submit) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearFormError(form);
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      await submit();
    } catch (err) {
      if (err?.status !== 401) showFormError(form, err);
    } finally {
      button.disabled = false;
    }
  });
}

let confirmResolve = null;
let confirmAction = null;

function settleConfirm(value) {
  const resolve = confirmResolve;
  confirmResolve = null;
  confirmAction = null;
  resolve?.(value);
}

export function initConfirm() {
  const dialog = $('#confirm-dialog');
  const form = $('#confirm-form');
  onSubmit(form, async () => {
    const grace = form.elements.namedItem('grace').value.trim();
    const result = await confirmAction?.({ grace });
    dialog.close('confirmed');
    settleConfirm(result ?? true);
  });
  dialog.addEventListener('close', () => settleConfirm(null));
}

// Asks before something that cannot be undone. `action` runs on Confirm (its error keeps the dialog
// open); resolves to its result, or null when cancelled.
export function confirm({ title, text, confirmLabel, danger = true, askGrace = false, action }) {
  const dialog = $('#confirm-dialog');
  const form = $('#confirm-form');
  clearFormError(form);
  $('#confirm-title').textContent = title;
  $('#confirm-text').textContent = text;
  $('#confirm-grace').hidden = !askGrace;
  form.elements.namedItem('grace').value = '24h';
  const ok = $('#confirm-ok');
  ok.textContent = confirmLabel;
  ok.classList.toggle('danger', danger);
  confirmAction = action;
  return new Promise((resolve) => {
    confirmResolve = resolve;
    dialog.showModal();
    (askGrace ? form.elements.namedItem('grace') : form.querySelector('[data-action="cancel"]')).focus();
  });
}
