import type { ComponentChildren } from 'preact';
import { useId, useLayoutEffect, useRef, useState } from 'preact/hooks';

export interface PageProps {
  /** The page's heading (an h1). Leave it out when the content brings its own h1 (the identity page). */
  title?: ComponentChildren;
  /** A line under the heading. */
  lead?: ComponentChildren;
  /** Buttons at the right of the heading. */
  actions?: ComponentChildren;
  /** Fill the main area's height; the content scrolls itself (the virtualised inventory grid). */
  fill?: boolean;
  /** The accessible name when there is no title. */
  label?: string;
  testid?: string;
  class?: string;
  /** `article` for a page about one thing (an identity). */
  as?: 'section' | 'article';
  children?: ComponentChildren;
  busy?: boolean;
}

/**
 * The frame every view sits in: heading and actions, the content's width and
 * padding. The main area (`.main`) scrolls; a `fill` page stays within it and
 * lets its content scroll.
 */
export function Page(props: PageProps) {
  const headingId = useId();
  const Tag = props.as ?? 'section';
  const hasHead = props.title !== undefined || props.actions !== undefined;
  return (
    <Tag
      class={`page${props.fill ? ' page--fill' : ''}${props.class ? ' ' + props.class : ''}`}
      data-testid={props.testid}
      aria-labelledby={props.title !== undefined ? headingId : undefined}
      aria-label={props.title === undefined ? props.label : undefined}
      aria-busy={props.busy || undefined}
    >
      {hasHead && (
        <div class="page-head">
          <div class="page-head__title">
            {props.title !== undefined && <h1 id={headingId}>{props.title}</h1>}
            {props.lead !== undefined && <p class="muted page-head__lead">{props.lead}</p>}
          </div>
          {props.actions !== undefined && <div class="page-head__actions">{props.actions}</div>}
        </div>
      )}
      {props.children}
    </Tag>
  );
}

/** Whether content `scrollWidth` wide is cut off in a box `clientWidth` wide. */
export function overflowsX(scrollWidth: number, clientWidth: number): boolean {
  return scrollWidth > clientWidth + 1;
}

/**
 * A table that may be wider than the page: it scrolls sideways inside its own
 * frame instead of being cut off. While it overflows, the frame is a labelled
 * region that takes focus, so the arrow keys can scroll it.
 */
export function TableFrame(props: { label: string; children: ComponentChildren; class?: string }) {
  const ref = useRef<HTMLDivElement>(null);
  const [overflow, setOverflow] = useState(false);
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return undefined;
    const check = () => setOverflow(overflowsX(el.scrollWidth, el.clientWidth));
    check();
    if (typeof ResizeObserver === 'undefined') return undefined;
    const ro = new ResizeObserver(check);
    ro.observe(el);
    const inner = el.firstElementChild;
    if (inner) ro.observe(inner);
    return () => ro.disconnect();
  }, []);
  return (
    <div
      ref={ref}
      class={`table-frame${props.class ? ' ' + props.class : ''}`}
      role={overflow ? 'region' : undefined}
      aria-label={overflow ? props.label : undefined}
      tabIndex={overflow ? 0 : undefined}
      data-overflow={overflow ? 'true' : undefined}
    >
      {props.children}
    </div>
  );
}
