import type { EpochMetric, Job } from '@gpulab/sdk';
import { ConfusionMatrix } from '../../components/confusion-matrix';
import { LineChart } from '../../components/line-chart';
import { duration, percent } from '../../format';

/** The best epoch: the trainer's own (summary.bestEpoch), else the highest validation accuracy so far. */
export function bestEpoch(job: Job): EpochMetric | null {
  const summary = job.summary as { bestEpoch?: number } | null;
  const byTrainer = job.metrics.find((m) => m.epoch === summary?.bestEpoch);
  if (byTrainer) return byTrainer;
  let best: EpochMetric | null = null;
  for (const m of job.metrics) if (!best || m.valAcc > best.valAcc) best = m;
  return best;
}

const isMatrix = (v: unknown): v is number[][] =>
  Array.isArray(v) && v.every((r) => Array.isArray(r) && r.every((c) => typeof c === 'number'));

/**
 * Per-epoch training and validation loss, validation accuracy (live: the job is polled while it runs), the epoch
 * table, and the confusion matrix and per-class accuracy of the best epoch.
 */
export function JobCharts({ job, classes }: { job: Job; classes: string[] }) {
  const m = job.metrics;
  const best = bestEpoch(job);
  const confusion = best && isMatrix(best.confusion) ? best.confusion : null;
  const perClass = best && Array.isArray(best.perClassAcc) ? (best.perClassAcc as (number | null)[]) : null;
  const epochs = m.at(-1)?.epochs ?? (job.spec.epochs as number | undefined) ?? null;
  const loss = (y: number) => (Math.abs(y) >= 10 ? y.toFixed(1) : y.toFixed(2));

  return (
    <section aria-labelledby="metrics-h">
      <h2 id="metrics-h">
        Training{' '}
        {epochs ? (
          <span className="muted">
            (epoch {m.length} of {epochs})
          </span>
        ) : null}
      </h2>
      {m.length === 0 ? (
        <p className="muted">No epoch has finished yet; the charts fill in as the trainer reports each one.</p>
      ) : null}
      <div className="grid-2">
        <LineChart
          title="Loss per epoch"
          xLabel="Epoch"
          yLabel="Loss"
          formatY={loss}
          highlightX={best?.epoch ?? null}
          series={[
            { name: 'train loss', className: 's-train', points: m.map((e) => ({ x: e.epoch, y: e.trainLoss })) },
            { name: 'validation loss', className: 's-val', points: m.map((e) => ({ x: e.epoch, y: e.valLoss })) },
          ]}
        />
        <LineChart
          title="Validation accuracy per epoch"
          xLabel="Epoch"
          yLabel="Accuracy"
          yDomain={[0, 1]}
          formatY={(y) => `${Math.round(y * 100)}%`}
          highlightX={best?.epoch ?? null}
          series={[
            { name: 'validation accuracy', className: 's-acc', points: m.map((e) => ({ x: e.epoch, y: e.valAcc })) },
          ]}
        />
      </div>
      {m.length ? (
        <details>
          <summary>Epoch table</summary>
          <div className="table-wrap">
            <table>
              <caption>Metrics per epoch</caption>
              <thead>
                <tr>
                  <th scope="col">Epoch</th>
                  <th scope="col" className="num">
                    Train loss
                  </th>
                  <th scope="col" className="num">
                    Val loss
                  </th>
                  <th scope="col" className="num">
                    Val accuracy
                  </th>
                  <th scope="col" className="num">
                    Learning rate
                  </th>
                  <th scope="col" className="num">
                    Time
                  </th>
                </tr>
              </thead>
              <tbody>
                {m.map((e) => (
                  <tr key={e.epoch} className={e.epoch === best?.epoch ? 'best' : ''}>
                    <th scope="row">
                      {e.epoch}
                      {e.epoch === best?.epoch ? ' (best)' : ''}
                    </th>
                    <td className="num">{e.trainLoss.toFixed(4)}</td>
                    <td className="num">{e.valLoss.toFixed(4)}</td>
                    <td className="num">{percent(e.valAcc)}</td>
                    <td className="num">{e.lr?.toExponential(2) ?? '—'}</td>
                    <td className="num">{duration(e.seconds)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </details>
      ) : null}
      {best && confusion ? (
        <div className="grid-2">
          <ConfusionMatrix
            title={`Confusion matrix, best epoch (${best.epoch}, ${percent(best.valAcc)})`}
            counts={confusion}
            labels={classes}
          />
          {perClass ? (
            <div className="table-wrap">
              <table>
                <caption>Accuracy per class, epoch {best.epoch}</caption>
                <thead>
                  <tr>
                    <th scope="col">Class</th>
                    <th scope="col" className="num">
                      Accuracy
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {perClass.map((a, i) => (
                    // biome-ignore lint/suspicious/noArrayIndexKey: classes are positional
                    <tr key={i}>
                      <th scope="row">{classes[i] ?? `class ${i}`}</th>
                      <td className="num">{a === null ? 'no images' : percent(a)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ) : null}
        </div>
      ) : null}
    </section>
  );
}
