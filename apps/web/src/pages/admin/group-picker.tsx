import type { GroupSummary } from '../../api/types';
import { navigate, useLocation } from '../../router';

/** The group a teaching page shows, kept in the URL (?group=id) so the page can be reloaded and shared. */
export function useChosenGroup(managed: GroupSummary[]): GroupSummary | null {
  const { query } = useLocation();
  const id = query.get('group');
  return managed.find((g) => g.id === id) ?? managed[0] ?? null;
}

export function GroupPicker({
  managed,
  chosen,
  base,
}: {
  managed: GroupSummary[];
  chosen: GroupSummary | null;
  base: string;
}) {
  if (managed.length < 2) return chosen ? <p className="muted">Group: {chosen.name}</p> : null;
  return (
    <div className="field inline-field">
      <label htmlFor="group-pick">Group</label>
      <select
        id="group-pick"
        value={chosen?.id ?? ''}
        onChange={(e) => navigate(`${base}?group=${encodeURIComponent(e.target.value)}`)}
      >
        {managed.map((g) => (
          <option key={g.id} value={g.id}>
            {g.name}
          </option>
        ))}
      </select>
    </div>
  );
}
