import type { Dataset, QuoteResult } from '@gpulab/sdk';
import { type FormEvent, useEffect, useState } from 'react';
import { client } from '../../api/client';
import { useAuth } from '../../auth';
import { ErrorNote } from '../../components/notice';
import { useResource } from '../../hooks/use-resource';
import { navigate } from '../../router';
import { DatasetPicker } from './dataset-picker';
import { Hyperparams } from './hyperparams';
import { QuotePanel } from './quote-panel';
import { defaultForm, type SpecForm, toSubmitRequest } from './spec-form';

/**
 * A new fine-tune job: the dataset (mine, or uploaded here), the hyperparameters, then the quote — GPU-hours held,
 * cost at most, expected start or why it would wait — and only then the submit. Any change after the quote asks
 * for a new one. The submit carries an idempotency key, so a double click or a retried request makes one job.
 */
export function SubmitPage() {
  const { groups, refresh } = useAuth();
  const memberOf = groups.filter((g) => g.quota);
  const flavors = useResource(() => client.flavors(), []);
  const [dataset, setDataset] = useState<Dataset | null>(null);
  const [form, setForm] = useState<SpecForm>(() => defaultForm(memberOf[0]?.id ?? ''));
  const [quote, setQuote] = useState<{ q: QuoteResult; key: string; for: string } | null>(null);
  const [busy, setBusy] = useState<'quote' | 'submit' | null>(null);
  const [error, setError] = useState<unknown>(null);

  const body = dataset ? toSubmitRequest(form, dataset.uri) : null;
  const bodyKey = body ? JSON.stringify(body) : '';
  const fresh = quote !== null && quote.for === bodyKey;

  useEffect(() => {
    if (!form.group && memberOf[0]) setForm((f) => ({ ...f, group: memberOf[0]!.id }));
  }, [form.group, memberOf]);

  const getQuote = async (e: FormEvent) => {
    e.preventDefault();
    if (!body) return;
    setBusy('quote');
    setError(null);
    try {
      const q = await client.quote(body);
      setQuote({ q, key: crypto.randomUUID?.() ?? `${Date.now()}-${Math.random()}`, for: bodyKey });
    } catch (err) {
      setQuote(null);
      setError(err);
    } finally {
      setBusy(null);
    }
  };

  const submit = async () => {
    if (!body || !quote) return;
    setBusy('submit');
    setError(null);
    try {
      const job = await client.jobs.submit(body, { idempotencyKey: quote.key });
      void refresh();
      navigate(`/jobs/${job.id}`);
    } catch (err) {
      setError(err);
      setBusy(null);
    }
  };

  return (
    <>
      <h1>New fine-tune job</h1>
      <p className="muted">
        ResNet18 transfer learning on an ImageFolder dataset. The defaults are the classic recipe.
      </p>
      {memberOf.length === 0 ? (
        <p className="note warn">You are not in any group with GPU-hours yet: ask your instructor to add you.</p>
      ) : null}
      <form onSubmit={(e) => void getQuote(e)} aria-label="New job">
        <DatasetPicker value={dataset} onChange={setDataset} />
        <Hyperparams form={form} onChange={setForm} groups={memberOf} flavors={flavors.data?.items ?? []} />
        <ErrorNote error={error} />
        <div className="actions">
          <button type="submit" className={fresh ? 'secondary' : ''} disabled={!body || busy !== null}>
            {busy === 'quote' ? 'Quoting…' : fresh ? 'Quote again' : 'Get a quote'}
          </button>
          {!dataset ? <span className="muted">Choose or upload a dataset first.</span> : null}
        </div>
      </form>
      {quote && fresh ? (
        <>
          <QuotePanel quote={quote.q} />
          <div className="actions">
            <button type="button" disabled={busy !== null} onClick={() => void submit()}>
              {busy === 'submit' ? 'Submitting…' : 'Submit job'}
            </button>
          </div>
        </>
      ) : quote ? (
        <p className="muted">The form changed since the quote: get a new one to submit.</p>
      ) : null}
    </>
  );
}
