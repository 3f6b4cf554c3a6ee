import { type FormEvent, useState } from 'react';
import { errorMessage } from '../api/client';
import { WEBHOOK_EVENTS, type Webhook, webhooks } from '../api/endpoints';
import { useAuth } from '../auth';
import { Field } from '../components/field';
import { ErrorNote, Loading, Note } from '../components/notice';
import { dateTime } from '../format';
import { useResource } from '../hooks/use-resource';

/**
 * Notifications: webhooks that receive my jobs' endings and a low-balance warning (an instructor's group webhook
 * receives every member's), each delivery signed with HMAC-SHA256 under the secret shown once at creation, retried
 * with backoff; the deliveries with their attempts and answers.
 */
export function WebhooksPage() {
  const { managed } = useAuth();
  const list = useResource(() => webhooks.list(), []);
  const [url, setUrl] = useState('');
  const [events, setEvents] = useState<string[]>([...WEBHOOK_EVENTS]);
  const [group, setGroup] = useState('');
  const [secret, setSecret] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);

  const create = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    setSecret(null);
    try {
      const w = await webhooks.create({ url: url.trim(), events, ...(group ? { group } : {}) });
      setSecret(w.secret);
      setUrl('');
      list.reload();
    } catch (err) {
      setError(err);
    }
  };
  const toggle = (ev: string) => setEvents((cur) => (cur.includes(ev) ? cur.filter((x) => x !== ev) : [...cur, ev]));

  return (
    <>
      <h1>Notifications</h1>
      <p>
        A webhook receives a signed POST when one of your jobs ends and when your free hours fall below 10&nbsp;% of
        your grant. Verify the <code>gpulab-signature</code> header: <code>t=…,v1=…</code> is the HMAC-SHA256 of{' '}
        <code>&lt;t&gt;.&lt;body&gt;</code> under the secret.
      </p>
      <form onSubmit={create} className="card" aria-labelledby="new-hook">
        <h2 id="new-hook">New webhook</h2>
        <Field label="URL" help="Where gpulab sends the events (http or https).">
          {({ id, helpId }) => (
            <input
              id={id}
              aria-describedby={helpId}
              type="url"
              required
              value={url}
              onChange={(e) => setUrl(e.target.value)}
              placeholder="https://example.org/gpulab"
            />
          )}
        </Field>
        <fieldset>
          <legend>Events</legend>
          {WEBHOOK_EVENTS.map((ev) => (
            <label key={ev} className="inline">
              <input type="checkbox" checked={events.includes(ev)} onChange={() => toggle(ev)} /> {ev}
            </label>
          ))}
        </fieldset>
        {managed.length > 0 ? (
          <Field label="For" help="A group webhook receives the events of every member of a group you teach.">
            {({ id, helpId }) => (
              <select id={id} aria-describedby={helpId} value={group} onChange={(e) => setGroup(e.target.value)}>
                <option value="">my own jobs</option>
                {managed.map((g) => (
                  <option key={g.id} value={g.id}>
                    group {g.name}
                  </option>
                ))}
              </select>
            )}
          </Field>
        ) : null}
        <button type="submit" disabled={events.length === 0}>
          Create webhook
        </button>
        {error ? <ErrorNote error={error} /> : null}
        {secret ? (
          <Note kind="ok">
            Created. Its signing secret, shown only now: <code className="secret">{secret}</code>
          </Note>
        ) : null}
      </form>
      <h2>My webhooks</h2>
      {list.loading && !list.data ? <Loading what="webhooks" /> : null}
      {list.error ? <ErrorNote error={list.error} /> : null}
      {list.data?.items.length === 0 ? <p>None yet.</p> : null}
      {list.data?.items.map((w) => (
        <HookCard key={w.id} hook={w} onRemoved={list.reload} />
      ))}
    </>
  );
}

function HookCard({ hook, onRemoved }: { hook: Webhook; onRemoved: () => void }) {
  const deliveries = useResource(
    () => webhooks.deliveries(hook.id),
    [hook.id],
    () => 10_000,
  );
  const [message, setMessage] = useState<string | null>(null);
  const act = async (what: 'test' | 'remove') => {
    try {
      if (what === 'test') {
        await webhooks.test(hook.id);
        setMessage('Ping queued: it is delivered within a few seconds.');
        deliveries.reload();
      } else {
        await webhooks.remove(hook.id);
        onRemoved();
      }
    } catch (e) {
      setMessage(errorMessage(e));
    }
  };
  return (
    <section className="card" aria-label={`webhook ${hook.url}`}>
      <h3>
        <code>{hook.url}</code> {hook.groupId ? <small>(group)</small> : null}
      </h3>
      <p>
        {hook.events.join(', ')} · since {dateTime(hook.createdAt)}
      </p>
      <p>
        <button type="button" onClick={() => act('test')}>
          Send a test
        </button>{' '}
        <button type="button" className="danger" onClick={() => act('remove')}>
          Delete
        </button>
      </p>
      {message ? <Note>{message}</Note> : null}
      <table>
        <caption>Deliveries, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Event</th>
            <th scope="col">Status</th>
            <th scope="col">Attempts</th>
            <th scope="col">Answer</th>
            <th scope="col">When</th>
          </tr>
        </thead>
        <tbody>
          {(deliveries.data?.items ?? []).map((d) => (
            <tr key={d.id}>
              <td>{d.event}</td>
              <td>{d.status}</td>
              <td>{d.attempts}</td>
              <td>{d.lastStatusCode ?? d.lastError ?? '—'}</td>
              <td>{dateTime(d.deliveredAt ?? d.nextAttemptAt ?? d.createdAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
