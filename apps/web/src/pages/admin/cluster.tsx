import type { Flavor } from '@gpulab/sdk';
import { type FormEvent, useState } from 'react';
import { client } from '../../api/client';
import { flavors as flavorsApi } from '../../api/endpoints';
import { useAuth } from '../../auth';
import { ErrorNote, Loading, Note } from '../../components/notice';
import { money } from '../../format';
import { useResource } from '../../hooks/use-resource';

/** GPU types: capacity, GPUs busy now, and the price per GPU-hour (admins edit it; hours already metered keep theirs). */
export function ClusterPage() {
  const { isAdmin } = useAuth();
  const list = useResource(
    () => client.flavors(),
    [],
    () => 5000,
  );
  return (
    <>
      <h1>Cluster</h1>
      <ErrorNote error={list.error} />
      {list.data ? (
        <div className="table-wrap">
          <table>
            <caption>Capacity and prices by GPU type (live)</caption>
            <thead>
              <tr>
                <th scope="col">GPU type</th>
                <th scope="col">Busy now</th>
                <th scope="col" className="num">
                  Capacity
                </th>
                <th scope="col" className="num">
                  Price per GPU-hour
                </th>
              </tr>
            </thead>
            <tbody>
              {list.data.items.map((f) => (
                <tr key={f.name}>
                  <th scope="row">{f.name}</th>
                  <td>
                    <meter
                      min={0}
                      max={Math.max(1, f.capacity)}
                      value={f.inUse}
                      aria-label={`${f.name}: ${f.inUse} of ${f.capacity} GPUs busy`}
                    />{' '}
                    {f.inUse} of {f.capacity}
                  </td>
                  <td className="num">{f.capacity}</td>
                  <td className="num">
                    {isAdmin ? <PriceEditor f={f} onSaved={list.reload} /> : money(f.pricePerGpuHour)}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <Loading what="GPU types" />
      )}
      <p className="muted small">Capacity comes from the scheduler's launcher (local slots, or Kubernetes nodes).</p>
    </>
  );
}

function PriceEditor({ f, onSaved }: { f: Flavor; onSaved: () => void }) {
  const [value, setValue] = useState(String(f.pricePerGpuHour));
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState(false);
  const save = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    setSaved(false);
    try {
      await flavorsApi.setPrice(f.name, Number(value));
      setSaved(true);
      onSaved();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <form className="inline-form" onSubmit={(e) => void save(e)}>
      <label className="visually-hidden" htmlFor={`price-${f.name}`}>
        Price per GPU-hour of {f.name}
      </label>
      <input
        id={`price-${f.name}`}
        type="number"
        min={0}
        step="any"
        required
        value={value}
        onChange={(e) => setValue(e.target.value)}
      />
      <button type="submit" className="small">
        Save
      </button>
      {saved ? <Note kind="ok">Saved.</Note> : null}
      <ErrorNote error={error} />
    </form>
  );
}
