import { useEffect, useRef, useState } from 'preact/hooks';
import { isHelpKey, SHORTCUTS } from '../lib/shortcuts';

/** The top bar's button for the shortcut list. */
export function ShortcutButton({ open, onToggle }: { open: boolean; onToggle: () => void }) {
  return (
    <button type="button" class="topbar__help" data-testid="shortcuts-open" aria-haspopup="dialog" aria-expanded={open} onClick={onToggle}>
      <kbd aria-hidden="true">?</kbd> Shortcuts
    </button>
  );
}

/** Open state of the shortcut list, shared by the button and the overlay. */
export function useShortcutHelp(): { open: boolean; toggle: () => void; close: () => void } {
  const [open, setOpen] = useState(false);
  return { open, toggle: () => setOpen((o) => !o), close: () => setOpen(false) };
}

/**
 * The keyboard shortcut list: `?` (outside a text field) or the top bar's
 * button opens it, `?` or Esc closes it and gives the focus back.
 */
export function ShortcutHelp({ open, onToggle, onClose }: { open: boolean; onToggle: () => void; onClose: () => void }) {
  const closeRef = useRef<HTMLButtonElement>(null);
  const back = useRef<HTMLElement | null>(null);

  const hide = () => {
    onClose();
    back.current?.focus();
  };

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (isHelpKey(e)) {
        e.preventDefault();
        e.stopPropagation();
        if (open) hide();
        else onToggle();
      } else if (open && e.key === 'Escape') {
        e.preventDefault();
        e.stopPropagation();
        hide();
      }
    };
    // Capture: the overlay answers before a view's own keys (Esc on an identity page).
    window.addEventListener('keydown', onKey, true);
    return () => window.removeEventListener('keydown', onKey, true);
  }, [open]);

  useEffect(() => {
    if (!open) return;
    // Remember where the focus was (the button, or the grid when `?` was pressed) to give it back.
    back.current = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    closeRef.current?.focus();
  }, [open]);

  if (!open) return null;
  return (
    <>
      {open && (
        <div class="overlay" onClick={(e) => e.target === e.currentTarget && hide()}>
          <div
            class="dialog shortcuts"
            role="dialog"
            aria-modal="true"
            aria-labelledby="shortcuts-h"
            data-testid="shortcuts"
            onKeyDown={(e) => {
              // Keep Tab inside the dialog: its only control is the close button.
              if (e.key === 'Tab') {
                e.preventDefault();
                closeRef.current?.focus();
              }
            }}
          >
            <div class="dialog__head">
              <h2 id="shortcuts-h">Keyboard shortcuts</h2>
              <button type="button" class="button" ref={closeRef} data-testid="shortcuts-close" onClick={hide}>
                Close
              </button>
            </div>
            <div class="shortcuts__groups">
              {SHORTCUTS.map((g) => (
                <div key={g.title} class="shortcuts__group">
                  <h3>{g.title}</h3>
                  <p class="muted small">{g.where}</p>
                  <dl>
                    {g.shortcuts.map((s) => (
                      <div key={s.does} class="shortcuts__row">
                        <dt>
                          {s.keys.map((k) => (
                            <kbd key={k}>{k}</kbd>
                          ))}
                        </dt>
                        <dd>{s.does}</dd>
                      </div>
                    ))}
                  </dl>
                </div>
              ))}
            </div>
          </div>
        </div>
      )}
    </>
  );
}
