import type { ReactNode } from 'react';
import { errorMessage } from '../api/client';

/** An error (role=alert, announced) or an informational note (role=status). */
export function ErrorNote({ error, prefix }: { error: unknown; prefix?: string }) {
  if (!error) return null;
  return (
    <p className="note error" role="alert">
      {prefix ? `${prefix}: ` : ''}
      {errorMessage(error)}
    </p>
  );
}

export function Note({ children, kind = 'info' }: { children: ReactNode; kind?: 'info' | 'ok' | 'warn' }) {
  return (
    <p className={`note ${kind}`} role="status">
      {children}
    </p>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="muted" aria-busy="true">
      Loading {what}…
    </p>
  );
}
