import { useEffect, useRef, useState } from 'preact/hooks';
import { formatCount } from '../lib/format';

export interface MenuOption<V> {
  value: V;
  label: string;
  count?: number;
}

interface Props<V> {
  label: string;
  options: MenuOption<V>[];
  selected: V[];
  /** Single choice (radio) instead of several (checkboxes). */
  single?: boolean;
  onChange: (selected: V[]) => void;
  testid?: string;
}

/** A filter chip that opens a menu of values with counts. */
export function FilterMenu<V extends string | number | boolean>(props: Props<V>) {
  const [open, setOpen] = useState(false);
  const root = useRef<HTMLDivElement>(null);

  useEffect(() => {
    if (!open) return undefined;
    const onDown = (e: MouseEvent) => {
      if (root.current && !root.current.contains(e.target as Node)) setOpen(false);
    };
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        e.stopPropagation();
        setOpen(false);
        root.current?.querySelector<HTMLButtonElement>('.chip')?.focus();
      }
    };
    document.addEventListener('mousedown', onDown);
    document.addEventListener('keydown', onKey, true);
    return () => {
      document.removeEventListener('mousedown', onDown);
      document.removeEventListener('keydown', onKey, true);
    };
  }, [open]);

  useEffect(() => {
    if (open) root.current?.querySelector<HTMLInputElement>('.menu input')?.focus();
  }, [open]);

  const chosen = props.options.filter((o) => props.selected.includes(o.value));
  const summary =
    chosen.length === 0 ? null : chosen.length === 1 ? chosen[0].label : `${chosen.length} selected`;

  const toggle = (v: V) => {
    if (props.single) props.onChange(props.selected.includes(v) ? [] : [v]);
    else props.onChange(props.selected.includes(v) ? props.selected.filter((x) => x !== v) : [...props.selected, v]);
  };

  return (
    <div class="filter" ref={root}>
      <button
        type="button"
        class={`chip${chosen.length ? ' chip--on' : ''}`}
        aria-haspopup="true"
        aria-expanded={open}
        data-testid={props.testid}
        onClick={() => setOpen(!open)}
      >
        <span class="chip__label">{props.label}</span>
        {summary && <span class="chip__value">{summary}</span>}
        <span class="chip__caret" aria-hidden="true">▾</span>
      </button>
      {open && (
        <div class="menu" role="group" aria-label={props.label}>
          {props.options.length === 0 && <div class="menu__empty">No values</div>}
          {props.options.map((o) => (
            <label class="menu__item" key={String(o.value)}>
              <input
                type={props.single ? 'radio' : 'checkbox'}
                name={props.single ? props.label : undefined}
                checked={props.selected.includes(o.value)}
                onClick={() => toggle(o.value)}
              />
              <span class="menu__label">{o.label}</span>
              {o.count !== undefined && <span class="menu__count">{formatCount(o.count)}</span>}
            </label>
          ))}
          {chosen.length > 0 && (
            <button type="button" class="menu__clear" onClick={() => props.onChange([])}>
              Clear
            </button>
          )}
        </div>
      )}
    </div>
  );
}
