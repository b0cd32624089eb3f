import { describe, expect, it } from 'vitest';
import { parseRoute, routeHash } from './route';

describe('parseRoute', () => {
  it('defaults to the inventory', () => {
    expect(parseRoute('')).toEqual({ name: 'inventory' });
    expect(parseRoute('#')).toEqual({ name: 'inventory' });
    expect(parseRoute('#/')).toEqual({ name: 'inventory' });
    expect(parseRoute('#/inventory')).toEqual({ name: 'inventory' });
    expect(parseRoute('#/inventory/')).toEqual({ name: 'inventory' });
  });

  it('parses identity ids', () => {
    expect(parseRoute('#/identity/42')).toEqual({ name: 'identity', id: 42 });
    expect(parseRoute('/identity/100000/')).toEqual({ name: 'identity', id: 100000 });
    expect(parseRoute('#/identity/7?tab=grants')).toEqual({ name: 'identity', id: 7 });
  });

  it('rejects malformed ids and unknown paths', () => {
    for (const h of ['#/identity/', '#/identity/abc', '#/identity/0', '#/identity/-3', '#/identity/4.5', '#/identity/12x', '#/identity/1/2']) {
      expect(parseRoute(h).name, h).not.toBe('identity');
    }
    expect(parseRoute('#/nowhere')).toEqual({ name: 'not_found', path: '/nowhere' });
    expect(parseRoute('#/blast/0').name).toBe('not_found');
  });

  it('round-trips through routeHash', () => {
    expect(routeHash({ name: 'identity', id: 42 })).toBe('#/identity/42');
    expect(parseRoute(routeHash({ name: 'identity', id: 9 }))).toEqual({ name: 'identity', id: 9 });
    expect(routeHash({ name: 'inventory' })).toBe('#/inventory');
    for (const h of ['#/reviews', '#/team', '#/posture', '#/blast/7']) {
      expect(routeHash(parseRoute(h))).toBe(h);
    }
  });
});

describe('sources route', () => {
  it('parses and prints #/sources', () => {
    expect(parseRoute('#/sources')).toEqual({ name: 'sources' });
    expect(parseRoute('#/sources/')).toEqual({ name: 'sources' });
    expect(parseRoute('#/sources/3')).toEqual({ name: 'not_found', path: '/sources/3' });
    expect(routeHash({ name: 'sources' })).toBe('#/sources');
  });
});
