import type { QuoteResult } from '@gpulab/sdk';
import { dateTime, gpuHours, money, relative } from '../../format';

/** What a submission would hold, cost at most, and when it would start (POST /v1/quote: nothing is written). */
export function QuotePanel({ quote }: { quote: QuoteResult }) {
  return (
    <section className="card quote" aria-labelledby="quote-h" aria-live="polite">
      <h2 id="quote-h">Quote</h2>
      <dl className="facts">
        <div>
          <dt>Held from my quota</dt>
          <dd>
            <strong>{gpuHours(quote.gpuHours)}</strong>{' '}
            <span className="muted">
              in {quote.group.name} ({quote.gpus} × {quote.flavor}; only the time used is charged, the rest is released)
            </span>
          </dd>
        </div>
        <div>
          <dt>Cost at most</dt>
          <dd>
            <strong>{money(quote.cost)}</strong>
            {quote.rateMicrosPerGpuHour != null ? (
              <span className="muted"> at {money(quote.rateMicrosPerGpuHour / 1e6)} per GPU-hour</span>
            ) : (
              <span className="muted"> (no price set for {quote.flavor})</span>
            )}
          </dd>
        </div>
        <div>
          <dt>Expected start</dt>
          <dd>
            {quote.admitNow ? (
              <strong>now{quote.usesReservation ? ', on my reservation' : ''}</strong>
            ) : quote.estimatedStart ? (
              <strong>
                {relative(quote.estimatedStart)} ({dateTime(quote.estimatedStart)})
              </strong>
            ) : (
              <strong>not as things stand</strong>
            )}
          </dd>
        </div>
      </dl>
      {quote.pending ? (
        <p className="note warn">
          It would wait{quote.pending.reason ? ` (${quote.pending.reason})` : ''}: {quote.pending.message}
          {quote.pending.position != null ? ` · position ${quote.pending.position} in the queue` : ''}
        </p>
      ) : null}
    </section>
  );
}
