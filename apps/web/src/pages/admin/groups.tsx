import { type FormEvent, useState } from 'react';
import { groups } from '../../api/endpoints';
import type { GroupView } from '../../api/types';
import { useAuth } from '../../auth';
import { Field } from '../../components/field';
import { ErrorNote, Loading, Note } from '../../components/notice';
import { NumberField } from '../../components/number-field';
import { QuotaBar } from '../../components/quota-bar';
import { date, gpuHours } from '../../format';
import { useResource } from '../../hooks/use-resource';
import { GroupPicker, useChosenGroup } from './group-picker';

/**
 * A group I teach (or any, for admins): its budget as granted / held / used / unallocated, each member's balance,
 * granting hours to a member (within the budget), and adding members.
 */
export function GroupsPage() {
  const { managed, refresh } = useAuth();
  const chosen = useChosenGroup(managed);
  const view = useResource(
    () => (chosen ? groups.get(chosen.id) : Promise.resolve(null)),
    [chosen?.id],
    () => 10_000,
  );

  if (!managed.length) return <p>You do not manage any group.</p>;
  return (
    <>
      <h1>Groups</h1>
      <GroupPicker managed={managed} chosen={chosen} base="/admin/groups" />
      <ErrorNote error={view.error} />
      {view.data ? (
        <GroupDetail
          g={view.data}
          onChanged={() => {
            view.reload();
            void refresh();
          }}
        />
      ) : (
        <Loading what="the group" />
      )}
    </>
  );
}

function GroupDetail({ g, onChanged }: { g: GroupView; onChanged: () => void }) {
  const t = g.totals;
  return (
    <>
      <section aria-labelledby="budget-h">
        <h2 id="budget-h">{g.name}</h2>
        <p className="muted">
          Period {date(g.periodStart)} – {date(g.periodEnd)} · default max runtime {g.defaultMaxHours} h
          {g.maxRunningGpusPerUser ? ` · at most ${g.maxRunningGpusPerUser} running GPUs per student` : ''}
        </p>
        <QuotaBar
          label="Group budget"
          totalName="budget"
          grantedHours={t.budgetHours}
          heldHours={t.heldHours}
          usedHours={t.usedHours}
          freeHours={t.budgetHours - t.usedHours - t.heldHours}
        />
        <p className="small">
          Granted to members {gpuHours(t.grantedHours)} · not yet granted{' '}
          <strong>{gpuHours(t.unallocatedHours)}</strong>
        </p>
      </section>
      <section aria-labelledby="members-h">
        <h2 id="members-h">Members</h2>
        <div className="table-wrap">
          <table>
            <caption>Members of {g.name} and their GPU-hours</caption>
            <thead>
              <tr>
                <th scope="col">Member</th>
                <th scope="col">Role</th>
                <th scope="col" className="num">
                  Granted
                </th>
                <th scope="col" className="num">
                  Held
                </th>
                <th scope="col" className="num">
                  Used
                </th>
                <th scope="col" className="num">
                  Free
                </th>
              </tr>
            </thead>
            <tbody>
              {g.members.map((m) => (
                <tr key={m.membershipId} data-email={m.user.email}>
                  <th scope="row">
                    {m.user.name}
                    <div className="small muted">{m.user.email}</div>
                  </th>
                  <td>{m.role}</td>
                  <td className="num">{gpuHours(m.grantedHours)}</td>
                  <td className="num">{gpuHours(m.heldHours)}</td>
                  <td className="num">{gpuHours(m.usedHours)}</td>
                  <td className="num">{gpuHours(m.freeHours)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>
      <div className="grid-2">
        <GrantForm g={g} onChanged={onChanged} />
        <AddMemberForm g={g} onChanged={onChanged} />
      </div>
    </>
  );
}

function GrantForm({ g, onChanged }: { g: GroupView; onChanged: () => void }) {
  const [email, setEmail] = useState('');
  const [hours, setHours] = useState(1);
  const [note, setNote] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<string | null>(null);
  const who = email || g.members.find((m) => m.role === 'student')?.user.email || g.members[0]?.user.email || '';

  const grant = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    setDone(null);
    try {
      const r = await groups.grant(g.id, { email: who, hours, ...(note.trim() ? { note: note.trim() } : {}) });
      setDone(
        `Granted ${gpuHours(hours)} to ${who}: now ${gpuHours(r.member.grantedHours)} granted, ${gpuHours(r.member.freeHours)} free.`,
      );
      onChanged();
    } catch (err) {
      setError(err);
    }
  };

  return (
    <form className="card" onSubmit={(e) => void grant(e)} aria-labelledby="grant-h">
      <h2 id="grant-h">Grant GPU-hours</h2>
      <Field label="Member">
        {({ id }) => (
          <select id={id} value={who} onChange={(e) => setEmail(e.target.value)}>
            {g.members.map((m) => (
              <option key={m.membershipId} value={m.user.email}>
                {m.user.name} ({m.user.email})
              </option>
            ))}
          </select>
        )}
      </Field>
      <NumberField
        label="Hours"
        min={0.001}
        max={100000}
        value={hours}
        onChange={setHours}
        help={`Up to ${gpuHours(g.totals.unallocatedHours)} not yet granted.`}
      />
      <Field label="Note" help="Optional; kept in the group's ledger.">
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
      <ErrorNote error={error} />
      {done ? <Note kind="ok">{done}</Note> : null}
      <button type="submit" disabled={!who}>
        Grant
      </button>
    </form>
  );
}

function AddMemberForm({ g, onChanged }: { g: GroupView; onChanged: () => void }) {
  const [email, setEmail] = useState('');
  const [name, setName] = useState('');
  const [role, setRole] = useState<'student' | 'instructor'>('student');
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<string | null>(null);

  const add = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    setDone(null);
    try {
      const m = await groups.addMember(g.id, { email, role, ...(name.trim() ? { name: name.trim() } : {}) });
      setDone(`${m.user.email} is a ${m.role} of ${g.name}.`);
      setEmail('');
      setName('');
      onChanged();
    } catch (err) {
      setError(err);
    }
  };

  return (
    <form className="card" onSubmit={(e) => void add(e)} aria-labelledby="add-h">
      <h2 id="add-h">Add a member</h2>
      <Field
        label="Email"
        help="An unknown email creates the account (the person then needs a password from an admin)."
      >
        {({ id, helpId }) => (
          <input
            id={id}
            aria-describedby={helpId}
            type="email"
            required
            value={email}
            onChange={(e) => setEmail(e.target.value)}
          />
        )}
      </Field>
      <Field label="Name" help="Optional.">
        {({ id, helpId }) => (
          <input id={id} aria-describedby={helpId} value={name} onChange={(e) => setName(e.target.value)} />
        )}
      </Field>
      <Field label="Role">
        {({ id }) => (
          <select id={id} value={role} onChange={(e) => setRole(e.target.value as 'student' | 'instructor')}>
            <option value="student">student</option>
            <option value="instructor">instructor</option>
          </select>
        )}
      </Field>
      <ErrorNote error={error} />
      {done ? <Note kind="ok">{done}</Note> : null}
      <button type="submit">Add</button>
    </form>
  );
}
