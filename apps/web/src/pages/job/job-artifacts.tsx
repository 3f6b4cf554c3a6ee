import type { Job } from '@gpulab/sdk';
import { artifacts } from '../../api/endpoints';
import { ErrorNote } from '../../components/notice';
import { bytes } from '../../format';
import { useResource } from '../../hooks/use-resource';

/**
 * The finished job's files, each a presigned download link straight from S3 (GET /v1/jobs/:id/artifacts; links
 * last 15 minutes, so they are fetched again on a later visit). Checkpoints are listed, not offered.
 */
export function JobArtifacts({ job }: { job: Job }) {
  const files = useResource(() => artifacts.get(job.id), [job.id, job.status, job.artifacts.length]);
  const d = files.data;
  const any = d && (d.model.length || d.metrics || d.logs.length);
  return (
    <section aria-labelledby="artifacts-h">
      <h2 id="artifacts-h">Artifacts</h2>
      <ErrorNote error={files.error} />
      {d && !any ? <p className="muted">No files yet: the model is written when training finishes.</p> : null}
      {d?.model.length ? (
        <>
          <h3>Model</h3>
          <ul className="files">
            {d.model.map((f) => (
              <li key={f.key}>
                <a href={f.url} download={f.path.split('/').pop()} rel="noopener">
                  {f.path}
                </a>{' '}
                <span className="muted">{bytes(f.bytes)}</span>
              </li>
            ))}
          </ul>
          <p className="muted small">
            <code>weights.safetensors</code> loads in PyTorch as <code>resnet18(num_classes=N)</code>;{' '}
            <code>tfjs/model.json</code> in TensorFlow.js; <code>labels.json</code> names the classes.
          </p>
        </>
      ) : null}
      {d && (d.metrics || d.logs.length) ? (
        <>
          <h3>Metrics and logs</h3>
          <ul className="files">
            {[...(d.metrics ? [d.metrics] : []), ...d.logs].map((f) => (
              <li key={f.key}>
                <a href={f.url} download={f.path.split('/').pop()} rel="noopener">
                  {f.path}
                </a>{' '}
                <span className="muted">{bytes(f.bytes)}</span>
              </li>
            ))}
          </ul>
        </>
      ) : null}
      {d?.checkpoints.length ? (
        <p className="muted small">{d.checkpoints.length} checkpoint file(s) kept for resuming.</p>
      ) : null}
    </section>
  );
}
