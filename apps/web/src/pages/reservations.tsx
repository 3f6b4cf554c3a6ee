import { type FormEvent, useState } from 'react';
import { client, errorMessage } from '../api/client';
import { useAuth } from '../auth';
import { Field } from '../components/field';
import { ErrorNote, Loading, Note } from '../components/notice';
import { NumberField } from '../components/number-field';
import { Timeline } from '../components/timeline';
import { dateTime, gpuHours, toLocalInput } from '../format';
import { useResource } from '../hooks/use-resource';

const hourFromNow = (h: number) => {
  const d = new Date(Date.now() + h * 3600_000);
  d.setMinutes(0, 0, 0);
  return d;
};

/**
 * Reservations: my bookings on a timeline per GPU type with its capacity and what is busy now, a form to book GPUs
 * for a window (the hold comes out of my quota at booking; a window the flavor cannot fit is refused with why), and
 * the list with cancel.
 */
export function ReservationsPage() {
  const { groups, refresh } = useAuth();
  const memberOf = groups.filter((g) => g.quota);
  const flavors = useResource(
    () => client.flavors(),
    [],
    () => 15_000,
  );
  const mine = useResource(() => client.reservations.list(), []);
  const [days, setDays] = useState(7);
  const [flavor, setFlavor] = useState('');
  const [gpus, setGpus] = useState(1);
  const [start, setStart] = useState(toLocalInput(hourFromNow(24)));
  const [end, setEnd] = useState(toLocalInput(hourFromNow(26)));
  const [group, setGroup] = useState('');
  const [note, setNote] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<string | null>(null);

  const fl = flavors.data?.items ?? [];
  const chosenFlavor = flavor || fl[0]?.name || '';
  const chosenGroup = group || memberOf[0]?.id || '';

  const book = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    setDone(null);
    try {
      const r = await client.reservations.create({
        flavor: chosenFlavor,
        gpus,
        start: new Date(start).toISOString(),
        end: new Date(end).toISOString(),
        ...(chosenGroup ? { group: chosenGroup } : {}),
        ...(note.trim() ? { note: note.trim() } : {}),
      });
      setDone(
        `Booked ${r.gpus} × ${r.flavor} from ${dateTime(r.start)} to ${dateTime(r.end)}; ${gpuHours(r.bookedHours)} held.`,
      );
      mine.reload();
      void refresh();
    } catch (err) {
      setError(err);
    }
  };

  const cancel = async (id: string) => {
    if (!window.confirm('Cancel this booking? What it still holds goes back to your quota.')) return;
    try {
      await client.reservations.cancel(id);
      setDone('Booking cancelled.');
      mine.reload();
      void refresh();
    } catch (err) {
      setError(errorMessage(err));
    }
  };

  return (
    <>
      <h1>Reservations</h1>
      <section aria-labelledby="cap-h">
        <div className="section-head">
          <h2 id="cap-h">Capacity and my bookings</h2>
          <label className="inline">
            Show{' '}
            <select value={days} onChange={(e) => setDays(Number(e.target.value))}>
              <option value={1}>1 day</option>
              <option value={7}>7 days</option>
              <option value={14}>14 days</option>
            </select>
          </label>
        </div>
        <ErrorNote error={flavors.error ?? mine.error} />
        {flavors.data && mine.data ? (
          <>
            <ul className="chips">
              {fl.map((f) => (
                <li key={f.name}>
                  <strong>{f.name}</strong>: {Math.max(0, f.capacity - f.inUse)} of {f.capacity} GPUs free now
                </li>
              ))}
            </ul>
            <Timeline flavors={fl} bookings={mine.data.items} from={new Date()} days={days} />
            <p className="muted small">
              Only your own bookings are shown; others' bookings count against capacity when you book.
            </p>
          </>
        ) : (
          <Loading what="capacity" />
        )}
      </section>
      <section aria-labelledby="book-h">
        <h2 id="book-h">Book GPUs</h2>
        <form className="grid-3" onSubmit={(e) => void book(e)}>
          <Field label="GPU type">
            {({ id }) => (
              <select id={id} value={chosenFlavor} onChange={(e) => setFlavor(e.target.value)}>
                {fl.map((f) => (
                  <option key={f.name} value={f.name}>
                    {f.name} ({f.capacity} GPUs)
                  </option>
                ))}
              </select>
            )}
          </Field>
          <NumberField label="GPUs" integer min={1} max={1024} value={gpus} onChange={setGpus} />
          <Field label="Charge to group">
            {({ id }) => (
              <select id={id} value={chosenGroup} onChange={(e) => setGroup(e.target.value)}>
                {memberOf.map((g) => (
                  <option key={g.id} value={g.id}>
                    {g.name}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <Field label="From" help="Your local time.">
            {({ id, helpId }) => (
              <input
                id={id}
                aria-describedby={helpId}
                type="datetime-local"
                required
                value={start}
                onChange={(e) => setStart(e.target.value)}
              />
            )}
          </Field>
          <Field label="Until">
            {({ id }) => (
              <input id={id} type="datetime-local" required value={end} onChange={(e) => setEnd(e.target.value)} />
            )}
          </Field>
          <Field label="Note" help="Optional, e.g. the assignment.">
            {({ id, helpId }) => (
              <input
                id={id}
                aria-describedby={helpId}
                maxLength={500}
                value={note}
                onChange={(e) => setNote(e.target.value)}
              />
            )}
          </Field>
          <div className="actions">
            <button type="submit" disabled={!chosenFlavor}>
              Book
            </button>
          </div>
        </form>
        <ErrorNote error={error} />
        {done ? <Note kind="ok">{done}</Note> : null}
      </section>
      <section aria-labelledby="list-h">
        <h2 id="list-h">My bookings</h2>
        {mine.data?.items.length ? (
          <div className="table-wrap">
            <table>
              <caption>My reservations, latest first</caption>
              <thead>
                <tr>
                  <th scope="col">Window</th>
                  <th scope="col">GPUs</th>
                  <th scope="col">Status</th>
                  <th scope="col" className="num">
                    Held
                  </th>
                  <th scope="col">Note</th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {mine.data.items.map((r) => (
                  <tr key={r.id}>
                    <th scope="row">
                      {dateTime(r.start)} – {dateTime(r.end)}
                    </th>
                    <td>
                      {r.gpus} × {r.flavor}
                    </td>
                    <td>
                      {r.status}
                      {r.closeReason ? <div className="small muted">{r.closeReason}</div> : null}
                    </td>
                    <td className="num">{gpuHours(r.heldHours)}</td>
                    <td>{r.note ?? ''}</td>
                    <td>
                      {r.status === 'booked' ? (
                        <button type="button" className="secondary small" onClick={() => void cancel(r.id)}>
                          Cancel
                        </button>
                      ) : null}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : (
          <p className="muted">No bookings.</p>
        )}
      </section>
    </>
  );
}
