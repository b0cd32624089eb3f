import { useEffect, useState } from 'preact/hooks';
import type { PersonRef } from '../bindings';
import { reviews } from '../lib/reviews';

/**
 * Finds an active person by name or email (the people in the cache) and
 * shows the chosen one with a way to change it. Test ids: `<testid>` (the
 * chosen person), `<testid>-search`, `<testid>-option`.
 */
export function PersonSearch({
  chosen,
  onChosen,
  placeholder,
  testid,
}: {
  chosen: PersonRef | null;
  onChosen: (p: PersonRef | null) => void;
  placeholder: string;
  testid: string;
}) {
  const [search, setSearch] = useState('');
  const [found, setFound] = useState<PersonRef[]>([]);
  useEffect(() => {
    if (!search.trim()) {
      setFound([]);
      return;
    }
    let live = true;
    reviews.findPeople(search).then(
      (p) => live && setFound(p.filter((x) => x.status === 'active').slice(0, 8)),
      () => live && setFound([]),
    );
    return () => {
      live = false;
    };
  }, [search]);
  if (chosen) {
    return (
      <span data-testid={testid}>
        {chosen.display_name}{' '}
        <button class="link-button" onClick={() => onChosen(null)} aria-label="Choose someone else">
          change
        </button>
      </span>
    );
  }
  return (
    <span class="owner-chooser">
      <input
        class="input input--mid"
        data-testid={`${testid}-search`}
        placeholder={placeholder}
        aria-label={placeholder}
        value={search}
        onInput={(e) => setSearch((e.target as HTMLInputElement).value)}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && found.length > 0) {
            e.preventDefault();
            onChosen(found[0]);
          }
        }}
      />
      {found.length > 0 && (
        <ul class="picker-list picker-list--popup">
          {found.map((p) => (
            <li key={p.id}>
              <button class="link-button" data-testid={`${testid}-option`} onClick={() => onChosen(p)}>
                {p.display_name} <span class="muted">{p.email}</span>
              </button>
            </li>
          ))}
        </ul>
      )}
    </span>
  );
}
