import { GpulabApiError, GpulabClient } from '@gpulab/sdk';

/**
 * The one SDK client of the dashboard: same origin as the page (the API serves it), signed in by the session cookie,
 * with the session's CSRF token set after sign-in or on reload (GET /v1/auth/session).
 */
export const client = new GpulabClient({ baseUrl: window.location.origin, retries: 1 });

type Listener = () => void;
const expiredListeners = new Set<Listener>();

/** Called by the auth provider: a request answered 401 means the session ended (expired, signed out elsewhere). */
export function onSessionExpired(listener: Listener): () => void {
  expiredListeners.add(listener);
  return () => expiredListeners.delete(listener);
}

/** Reports a failed request; a 401 signs the page out. */
export function noteError(e: unknown): void {
  if (e instanceof GpulabApiError && e.status === 401) for (const l of expiredListeners) l();
}

/** A person-readable message for any failure, naming the field the API blamed. */
export function errorMessage(e: unknown): string {
  if (e instanceof GpulabApiError) return e.field ? `${e.message} (${e.field})` : e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}
