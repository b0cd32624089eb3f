// The app's keyboard shortcuts, listed in the `?` overlay. Each view handles
// its own keys; this is the one list of them a person reads.

export interface Shortcut {
  keys: string[];
  does: string;
}

export interface ShortcutGroup {
  title: string;
  /** Where the keys work. */
  where: string;
  shortcuts: Shortcut[];
}

export const SHORTCUTS: ShortcutGroup[] = [
  {
    title: 'Everywhere',
    where: 'any page, outside a text field',
    shortcuts: [
      { keys: ['?'], does: 'show or hide this list' },
      { keys: ['Tab', 'Shift+Tab'], does: 'move between links, buttons and fields' },
      { keys: ['Esc'], does: 'close this list, a menu or a panel' },
    ],
  },
  {
    title: 'Inventory',
    where: 'the inventory grid',
    shortcuts: [
      { keys: ['/'], does: 'search' },
      { keys: ['↓'], does: 'from the search box, into the grid' },
      { keys: ['↑', '↓'], does: 'move the highlighted row' },
      { keys: ['PageUp', 'PageDown'], does: 'move a screen at a time' },
      { keys: ['Home', 'End'], does: 'first or last identity' },
      { keys: ['Enter'], does: 'open the highlighted identity' },
      { keys: ['Esc'], does: 'on an identity page: back to the inventory, where you were' },
    ],
  },
  {
    title: 'My reviews',
    where: 'the queue (click it or Tab to it)',
    shortcuts: [
      { keys: ['↑', '↓'], does: 'move (also k, j)' },
      { keys: ['a'], does: 'keep' },
      { keys: ['r'], does: 'revoke (retire for an identity)' },
      { keys: ['o'], does: 'rotate a credential' },
      { keys: ['x'], does: 'select or unselect the item (also Space)' },
      { keys: ['A'], does: 'follow the recommendation' },
      { keys: ['g'], does: 'send to another reviewer' },
      { keys: ['/'], does: 'type the justification (Enter or Esc back to the queue)' },
    ],
  },
  {
    title: 'Blast radius graph',
    where: 'the graph (Tab to it)',
    shortcuts: [
      { keys: ['←', '→', '↑', '↓'], does: 'move along the edges: → to what a node reaches, ← back, ↑ ↓ its neighbours' },
      { keys: ['Enter'], does: 'focus the node’s chains (Enter again, or Esc, to show all)' },
      { keys: ['+', '−'], does: 'zoom in or out' },
      { keys: ['0'], does: 'fit the graph' },
    ],
  },
];

/** Whether a key press is meant for a text field (then it is not a shortcut). */
export function isTypingTarget(t: EventTarget | null): boolean {
  if (typeof HTMLElement === 'undefined' || !(t instanceof HTMLElement)) return false;
  return t.isContentEditable || t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT';
}

/** Whether a key press asks for the shortcut list. */
export function isHelpKey(e: Pick<KeyboardEvent, 'key' | 'ctrlKey' | 'metaKey' | 'altKey' | 'target'>): boolean {
  return e.key === '?' && !e.ctrlKey && !e.metaKey && !e.altKey && !isTypingTarget(e.target);
}
