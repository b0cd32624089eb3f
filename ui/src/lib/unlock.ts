// The unlock calls: where no Secret Service runs, or the cache is keyed by a
// passphrase, the shell's `unlock_state` says whether a passphrase is chosen
// (no cache yet) or entered, and `unlock` opens the cache with it. The
// passphrase only goes in: no call returns it.

import { invoke } from '@tauri-apps/api/core';
import { inTauri } from './ipc';

/** What the shell's `unlock_state` answers. */
export interface UnlockState {
  unlocked: boolean;
  /** No cache yet: a passphrase is chosen. Otherwise it is entered. */
  new_cache: boolean;
  min_length: number;
  location: string;
}

export interface UnlockApi {
  state(): Promise<UnlockState>;
  /** Opens the cache; rejects with `database_unreadable` for a wrong passphrase. */
  unlock(passphrase: string, confirm: string | null): Promise<null>;
}

const tauriUnlock: UnlockApi = {
  state: () => invoke<UnlockState>('unlock_state'),
  unlock: (passphrase, confirm) => invoke<null>('unlock', { passphrase, confirm }),
};

/** An in-browser stand-in (mock data never needs unlocking; tests pass their own). */
export function createMockUnlock(opts: { newCache: boolean; passphrase?: string; minLength?: number }): UnlockApi & { tries: number } {
  let exists = !opts.newCache;
  let secret = opts.passphrase ?? '';
  const min = opts.minLength ?? 12;
  const api = {
    tries: 0,
    state: async (): Promise<UnlockState> => ({ unlocked: false, new_cache: !exists, min_length: min, location: '/home/me/.local/share/custodian/custodian.db' }),
    unlock: async (passphrase: string, confirm: string | null): Promise<null> => {
      api.tries++;
      if (!exists) {
        if (passphrase.length < min) throw { code: 'invalid_input', message: `the passphrase is too short: use at least ${min} characters` };
        if (passphrase !== confirm) throw { code: 'invalid_input', message: 'the two passphrases are not the same' };
        secret = passphrase;
        exists = true;
        return null;
      }
      if (passphrase !== secret) throw { code: 'database_unreadable', message: 'that passphrase does not open this cache; check it and try again' };
      return null;
    },
  };
  return api;
}

/** The Tauri commands, or (in a plain browser, where mock data never needs unlocking) a mock. */
export function unlockApi(): UnlockApi {
  return inTauri() ? tauriUnlock : createMockUnlock({ newCache: true });
}
