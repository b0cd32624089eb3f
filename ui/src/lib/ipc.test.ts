import { describe, expect, it } from 'vitest';
import { api, setBackend, toUserError, UserError, type Backend } from './ipc';

describe('toUserError', () => {
  it('keeps the code and message of a command error', () => {
    const e = toUserError({ code: 'not_found', message: 'no identity with id 9' });
    expect(e).toBeInstanceOf(UserError);
    expect(e).toBeInstanceOf(Error);
    expect(e.code).toBe('not_found');
    expect(e.message).toBe('no identity with id 9');
  });

  it('maps unknown codes, bare strings and JS errors to internal', () => {
    expect(toUserError({ code: 'exploded', message: 'x' }).code).toBe('internal');
    const s = toUserError('Command inventory not found');
    expect(s.code).toBe('internal');
    expect(s.message).toBe('Command inventory not found');
    const t = toUserError(new TypeError('boom'));
    expect([t.code, t.message]).toEqual(['internal', 'boom']);
    expect(toUserError(undefined).code).toBe('internal');
    expect(toUserError({}).message).toBe('Unexpected error');
  });

  it('passes a UserError through unchanged', () => {
    const e = new UserError('storage', 'disk full');
    expect(toUserError(e)).toBe(e);
  });
});

describe('api', () => {
  it('rejects with a UserError when the backend rejects', async () => {
    const failing: Backend = {
      summary: () => Promise.reject({ code: 'database_too_new', message: 'schema 9 > 3' }),
      inventory: () => Promise.reject('bad args'),
      inventoryFacets: () => Promise.reject(new Error('x')),
      identity: (id) => Promise.reject({ code: 'not_found', message: `no identity with id ${id}` }),
      sourceKinds: () => Promise.reject({ code: 'internal', message: 'no kinds' }),
      findingChecks: () => Promise.reject('no checks'),
      sources: () => Promise.reject({ code: 'storage', message: 'disk' }),
      addSource: () => Promise.reject({ code: 'invalid_input', message: "a csv source needs the setting 'path'" }),
      setSourceSecret: () => Promise.reject({ code: 'keyring', message: 'no keyring' }),
      setSourceWriteBack: () => Promise.reject({ code: 'not_found', message: 'no source 9' }),
      testSource: () => Promise.reject({ code: 'source_auth', message: '401' }),
      syncSource: () => Promise.reject({ code: 'cancelled', message: 'cancelled' }),
      syncProgress: () => Promise.resolve(null),
      cancelSync: () => Promise.resolve(false),
      syncRuns: () => Promise.resolve([]),
      runEvents: (run) => Promise.reject({ code: 'not_found', message: `no sync run ${run}` }),
      beginSourceSignIn: () => Promise.reject({ code: 'source_auth', message: 'public client flows are off' }),
      finishSourceSignIn: () => Promise.reject({ code: 'cancelled', message: 'the sign-in was cancelled' }),
      cancelSourceSignIn: () => Promise.resolve(false),
      clearDemo: () => Promise.reject({ code: 'invalid_input', message: 'no demo' }),
    };
    setBackend(failing);
    await expect(api.summary()).rejects.toMatchObject({ code: 'database_too_new', name: 'UserError' });
    await expect(api.identity(5)).rejects.toMatchObject({ code: 'not_found', message: 'no identity with id 5' });
    await expect(api.inventoryFacets()).rejects.toBeInstanceOf(UserError);
    await expect(api.addSource({ kind: 'csv', name: 'x', settings: {}, secret: null })).rejects.toMatchObject({ code: 'invalid_input', name: 'UserError' });
    await expect(api.setSourceSecret(1, 's')).rejects.toMatchObject({ code: 'keyring' });
    await expect(api.testSource(1)).rejects.toMatchObject({ code: 'source_auth' });
    await expect(api.syncSource(1)).rejects.toMatchObject({ code: 'cancelled' });
    await expect(api.runEvents(7)).rejects.toMatchObject({ code: 'not_found', message: 'no sync run 7' });
    await expect(api.syncProgress(1)).resolves.toBeNull();
    await expect(api.beginSourceSignIn(1)).rejects.toMatchObject({ code: 'source_auth', name: 'UserError' });
    await expect(api.finishSourceSignIn(1)).rejects.toMatchObject({ code: 'cancelled' });
    await expect(api.sourceKinds()).rejects.toMatchObject({ code: 'internal', message: 'no kinds' });
    await expect(api.findingChecks()).rejects.toBeInstanceOf(UserError);
  });
});
