import { GpulabApiError, type Me } from '@gpulab/sdk';
import { createContext, type ReactNode, useCallback, useContext, useEffect, useMemo, useState } from 'react';
import { client, onSessionExpired } from './api/client';
import { groups as groupsApi } from './api/endpoints';
import type { GroupSummary } from './api/types';

export interface Auth {
  status: 'loading' | 'signed-out' | 'signed-in';
  user: Me | null;
  /** Groups I belong to (admins: all), with my role in each. */
  groups: GroupSummary[];
  /** Groups I may manage: instructor there, or a global admin. */
  managed: GroupSummary[];
  isAdmin: boolean;
  /** Why the page is signed out, when it did not choose to be (session expired). */
  notice: string | null;
  signIn(email: string, password: string): Promise<void>;
  signOut(): Promise<void>;
  /** Reloads my quota and groups (after a submit, a grant, a booking). */
  refresh(): Promise<void>;
}

const AuthContext = createContext<Auth | null>(null);

export function useAuth(): Auth {
  const a = useContext(AuthContext);
  if (!a) throw new Error('useAuth outside <AuthProvider>');
  return a;
}

/**
 * The dashboard's session: restored on load from the cookie (GET /v1/auth/session gives back the CSRF token the
 * client must send on changes), started by sign-in, ended by sign-out or by any 401.
 */
export function AuthProvider({ children }: { children: ReactNode }) {
  const [status, setStatus] = useState<Auth['status']>('loading');
  const [user, setUser] = useState<Me | null>(null);
  const [groups, setGroups] = useState<GroupSummary[]>([]);
  const [notice, setNotice] = useState<string | null>(null);

  const loadProfile = useCallback(async () => {
    const [me, g] = await Promise.all([client.me(), groupsApi.list()]);
    setUser(me);
    setGroups(g.items);
    setStatus('signed-in');
  }, []);

  const signedOut = useCallback((why: string | null) => {
    client.setCsrfToken(undefined);
    setUser(null);
    setGroups([]);
    setNotice(why);
    setStatus('signed-out');
  }, []);

  useEffect(() => {
    let live = true;
    (async () => {
      try {
        const s = await client.auth.session();
        client.setCsrfToken(s.csrfToken ?? undefined);
        if (live) await loadProfile();
      } catch (e) {
        if (!live) return;
        if (e instanceof GpulabApiError && e.status === 401) signedOut(null);
        else signedOut(`Could not reach the API: ${(e as Error).message}`);
      }
    })();
    return () => {
      live = false;
    };
  }, [loadProfile, signedOut]);

  useEffect(() => onSessionExpired(() => signedOut('Your session ended. Please sign in again.')), [signedOut]);

  const value = useMemo<Auth>(() => {
    const isAdmin = user?.role === 'admin';
    return {
      status,
      user,
      groups,
      managed: groups.filter((g) => isAdmin || g.myRole === 'instructor' || g.myRole === 'admin'),
      isAdmin,
      notice,
      signIn: async (email, password) => {
        await client.auth.login(email, password);
        setNotice(null);
        await loadProfile();
      },
      signOut: async () => {
        try {
          await client.auth.logout();
        } finally {
          signedOut(null);
        }
      },
      refresh: loadProfile,
    };
  }, [status, user, groups, notice, loadProfile, signedOut]);

  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}
