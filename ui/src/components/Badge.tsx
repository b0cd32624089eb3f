import type { ComponentChildren } from 'preact';
import type { IdentityStatus, PersonStatus, Sensitivity, Severity } from '../bindings';
import { labelOf, PERSON_STATUS_LABELS, SEVERITY_LABELS, STATUS_LABELS, type Tone } from '../lib/format';

export function Badge(props: { tone?: Tone | 'info' | 'neutral'; title?: string; children: ComponentChildren; class?: string }) {
  return (
    <span class={`badge badge--${props.tone ?? 'neutral'}${props.class ? ' ' + props.class : ''}`} title={props.title}>
      {props.children}
    </span>
  );
}

/** Severity of a finding, or sensitivity of a resource (same scale). */
export function SeverityBadge(props: { value: Severity | Sensitivity; title?: string; suffix?: string }) {
  return (
    <span class={`sev sev--${props.value}`} title={props.title}>
      {labelOf(SEVERITY_LABELS, props.value)}
      {props.suffix}
    </span>
  );
}

export function StatusBadge(props: { value: IdentityStatus }) {
  const tone = props.value === 'active' ? 'ok' : props.value === 'disabled' ? 'muted' : 'bad';
  return <Badge tone={tone}>{labelOf(STATUS_LABELS, props.value)}</Badge>;
}

export function PersonStatusBadge(props: { value: PersonStatus }) {
  const tone = props.value === 'active' ? 'ok' : 'bad';
  return <Badge tone={tone}>{labelOf(PERSON_STATUS_LABELS, props.value)}</Badge>;
}
