import { type FormEvent, useState } from 'react';
import { errorMessage } from '../api/client';
import { useAuth } from '../auth';

/** Sign-in with email and password; the API sets the session cookie and answers with the CSRF token. */
export function LoginPage() {
  const { signIn, notice } = useAuth();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(email, password);
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main id="main" className="login">
      <form className="card" onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">Sign in to gpulab</h1>
        <p className="muted">Fine-tune image classifiers on the shared GPUs, within your group's GPU-hours.</p>
        {notice ? (
          <p className="note warn" role="status">
            {notice}
          </p>
        ) : null}
        <div className="field">
          <label htmlFor="email">Email</label>
          <input
            id="email"
            type="email"
            autoComplete="username"
            required
            value={email}
            onChange={(e) => setEmail(e.target.value)}
          />
        </div>
        <div className="field">
          <label htmlFor="password">Password</label>
          <input
            id="password"
            type="password"
            autoComplete="current-password"
            required
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </div>
        {error ? (
          <p className="note error" role="alert">
            {error}
          </p>
        ) : null}
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <p className="muted small">
          Scripts and the <code>gpulab</code> CLI use personal API tokens instead; the API is documented at{' '}
          <a href="/docs">/docs</a>.
        </p>
      </form>
    </main>
  );
}
