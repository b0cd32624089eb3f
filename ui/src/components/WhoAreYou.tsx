import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { PersonRef } from '../bindings';
import { toUserError, type UserError } from '../lib/ipc';
import { reviews } from '../lib/reviews';
import { useWhoAmI } from '../lib/connection';

/**
 * "Who are you?": the acting person, chosen from the people in the cache and
 * remembered by the backend. Shown wherever an action needs to know who acts
 * (My reviews, My team, a new campaign). Test ids: `person-picker`,
 * `person-search`, `person-option` (with `data-id`).
 */
export function WhoAreYou(props: { onChosen: (p: PersonRef) => void; why?: ComponentChildren; autoFocus?: boolean }) {
  const { who } = useWhoAmI();
  // In a team workspace you are your login's member: nobody to choose.
  if (who?.mode === 'workspace') return <NotAMember login={who.login} />;
  return <Picker {...props} />;
}

/** A workspace login with no active member behind it (removed, departed, never added). */
function NotAMember({ login }: { login: string | null }) {
  return (
    <div class="callout callout--error" role="alert" data-testid="not-a-member">
      <strong>This login is not an active workspace member</strong>
      <p>
        In a team workspace you act as the member behind your database login{login ? ` (${login})` : ''}; there is no choosing. Ask a workspace
        admin to add you, or connect with another login in <a href="#/settings">Settings</a>.
      </p>
    </div>
  );
}

function Picker({ onChosen, why, autoFocus = true }: { onChosen: (p: PersonRef) => void; why?: ComponentChildren; autoFocus?: boolean }) {
  const [search, setSearch] = useState('');
  const [found, setFound] = useState<PersonRef[]>([]);
  const [error, setError] = useState<UserError | null>(null);
  useEffect(() => {
    let live = true;
    reviews.findPeople(search).then(
      (p) => live && setFound(p),
      (e: unknown) => live && setError(toUserError(e)),
    );
    return () => {
      live = false;
    };
  }, [search]);
  return (
    <section class="panel who-are-you" data-testid="person-picker" aria-labelledby="who-h">
      <h2 id="who-h">Who are you?</h2>
      <p class="muted">{why ?? 'Reviews, decisions and the audit log record who acted. Choose yourself from the people in the cache.'}</p>
      <input
        class="input"
        data-testid="person-search"
        placeholder="Name or email"
        aria-label="Find yourself by name or email"
        value={search}
        onInput={(e) => setSearch((e.target as HTMLInputElement).value)}
        autoFocus={autoFocus}
      />
      {error && (
        <p class="error-text" role="alert">
          {error.message}
        </p>
      )}
      <ul class="picker-list" aria-label="People">
        {found.map((p) => (
          <li key={p.id}>
            <button
              class="link-button"
              data-testid="person-option"
              data-id={String(p.id)}
              disabled={p.status !== 'active'}
              onClick={() => reviews.setActingPerson(p.id).then(onChosen, (e: unknown) => setError(toUserError(e)))}
            >
              {p.display_name} <span class="muted">{p.email}</span>
              {p.status !== 'active' && <span class="badge">{p.status}</span>}
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}

/** The acting person: `undefined` while loading, `null` when nobody is chosen yet. */
export function useActingPerson(): [PersonRef | null | undefined, (p: PersonRef | null) => void, UserError | null] {
  const [me, setMe] = useState<PersonRef | null | undefined>(undefined);
  const [error, setError] = useState<UserError | null>(null);
  useEffect(() => {
    let live = true;
    reviews.actingPerson().then(
      (p) => live && setMe(p),
      (e: unknown) => {
        if (!live) return;
        setError(toUserError(e));
        setMe(null);
      },
    );
    return () => {
      live = false;
    };
  }, []);
  return [me, setMe, error];
}
