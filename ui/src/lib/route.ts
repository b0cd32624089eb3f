// Hash routing: `#/inventory`, `#/identity/123`, `#/sources`, `#/reviews`, `#/settings`.

export type Route =
  | { name: 'inventory' }
  | { name: 'identity'; id: number }
  | { name: 'sources' }
  | { name: 'reviews' }
  | { name: 'campaigns' }
  | { name: 'team' }
  | { name: 'posture' }
  | { name: 'settings' }
  | { name: 'blast'; id: number }
  | { name: 'not_found'; path: string };

/** Parses `location.hash` (with or without the leading `#`). */
export function parseRoute(hash: string): Route {
  let path = hash.startsWith('#') ? hash.slice(1) : hash;
  const q = path.indexOf('?');
  if (q >= 0) path = path.slice(0, q);
  const parts = path.split('/').filter((p) => p !== '');
  if (parts.length === 0) return { name: 'inventory' };
  if (parts.length === 1 && parts[0] === 'inventory') return { name: 'inventory' };
  if (parts.length === 1 && parts[0] === 'sources') return { name: 'sources' };
  if (parts.length === 1 && parts[0] === 'reviews') return { name: 'reviews' };
  if (parts.length === 1 && parts[0] === 'campaigns') return { name: 'campaigns' };
  if (parts.length === 1 && parts[0] === 'team') return { name: 'team' };
  if (parts.length === 1 && parts[0] === 'posture') return { name: 'posture' };
  if (parts.length === 1 && parts[0] === 'settings') return { name: 'settings' };
  if (parts.length === 2 && parts[0] === 'blast' && /^[1-9][0-9]{0,15}$/.test(parts[1])) {
    return { name: 'blast', id: Number(parts[1]) };
  }
  if (parts.length === 2 && parts[0] === 'identity' && /^[1-9][0-9]{0,15}$/.test(parts[1])) {
    return { name: 'identity', id: Number(parts[1]) };
  }
  return { name: 'not_found', path: '/' + parts.join('/') };
}

/** The hash for a route, e.g. `#/identity/42`. */
export function routeHash(route: Route): string {
  switch (route.name) {
    case 'inventory':
      return '#/inventory';
    case 'identity':
      return `#/identity/${route.id}`;
    case 'sources':
      return '#/sources';
    case 'reviews':
      return '#/reviews';
    case 'campaigns':
      return '#/campaigns';
    case 'team':
      return '#/team';
    case 'posture':
      return '#/posture';
    case 'settings':
      return '#/settings';
    case 'blast':
      return `#/blast/${route.id}`;
    case 'not_found':
      return '#' + route.path;
  }
}

export function identityHref(id: number): string {
  return routeHash({ name: 'identity', id });
}

export function navigate(route: Route): void {
  const h = routeHash(route);
  if (location.hash !== h) location.hash = h;
}
