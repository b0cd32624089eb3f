import type { ComponentChildren } from 'preact';
import type { ErrorCode } from '../bindings';
import { errorHeadline, type UserError } from '../lib/ipc';

/** An error's code, shown with every error so it can be quoted to an admin (`forbidden`, `database_auth`, …). */
export function ErrorCodeTag({ code }: { code: ErrorCode }) {
  return (
    <code class="error-code" data-testid="error-code">
      {code}
    </code>
  );
}

/** An error as a callout: the code's headline, the code itself, the message. */
export function ErrorCallout(props: { error: UserError | null; testid?: string; headline?: string; children?: ComponentChildren }) {
  if (!props.error) return null;
  return (
    <div class="callout callout--error" role="alert" data-testid={props.testid} data-code={props.error.code}>
      <strong>{props.headline ?? errorHeadline(props.error.code)}</strong> <ErrorCodeTag code={props.error.code} />
      <p>{props.error.message}</p>
      {props.children}
    </div>
  );
}
