import { type Dataset, type DatasetFile, listDatasets, type UploadProgress, uploadDataset } from '@gpulab/sdk';
import { DATASET_NAME } from '@gpulab/storage/src/dataset-keys';
import { type DragEvent, useEffect, useRef, useState } from 'react';
import { client, errorMessage } from '../../api/client';
import { Field } from '../../components/field';
import { ErrorNote } from '../../components/notice';
import { bytes } from '../../format';
import { useResource } from '../../hooks/use-resource';
import { datasetNameFrom, fromDrop, fromFileList, type Picked, summarise } from '../../lib/folder';
import { hashFile } from '../../lib/sha256';

type Phase =
  | { kind: 'idle' }
  | { kind: 'hashing'; done: number; total: number }
  | { kind: 'uploading'; p: UploadProgress }
  | { kind: 'done'; sent: number; reused: number; dataset: Dataset }
  | { kind: 'error'; message: string };

const RESUME_KEY = (name: string) => `gpulab.upload.${name}`;

/**
 * Choose one of my datasets, or upload a folder (drag and drop, or the folder picker): the files are hashed here,
 * the server answers with presigned URLs for the ones it does not have yet (files it has are skipped), they go
 * straight to S3 with progress, and the completed dataset is selected. An interrupted upload resumes (the session id
 * is kept in localStorage per dataset name).
 */
export function DatasetPicker({ value, onChange }: { value: Dataset | null; onChange: (d: Dataset | null) => void }) {
  const list = useResource(() => listDatasets(client), []);
  const [picked, setPicked] = useState<Picked | null>(null);
  const [name, setName] = useState('');
  const [phase, setPhase] = useState<Phase>({ kind: 'idle' });
  const [over, setOver] = useState(false);
  const input = useRef<HTMLInputElement>(null);

  useEffect(() => {
    input.current?.setAttribute('webkitdirectory', '');
  }, []);

  const ready = (list.data?.items ?? []).filter((d) => d.status === 'ready');
  const busy = phase.kind === 'hashing' || phase.kind === 'uploading';

  const take = (p: Picked) => {
    setPicked(p);
    setName(datasetNameFrom(p.root || 'dataset'));
    setPhase({ kind: 'idle' });
  };
  const onDrop = async (e: DragEvent) => {
    e.preventDefault();
    setOver(false);
    if (!busy) take(await fromDrop(e.dataTransfer));
  };

  const upload = async () => {
    if (!picked) return;
    try {
      setPhase({ kind: 'hashing', done: 0, total: picked.files.length });
      const files: DatasetFile[] = [];
      for (const [i, f] of picked.files.entries()) {
        files.push({ path: f.path, size: f.file.size, sha256: await hashFile(f.file), body: async () => f.file });
        if (i % 10 === 9 || i === picked.files.length - 1)
          setPhase({ kind: 'hashing', done: i + 1, total: picked.files.length });
      }
      let reused = 0;
      const r = await uploadDataset(client, {
        name,
        files,
        resume: localStorage.getItem(RESUME_KEY(name)),
        onSession: (s) => {
          localStorage.setItem(RESUME_KEY(name), s.id);
          reused = s.files - s.pending.files;
        },
        onProgress: (p) => setPhase({ kind: 'uploading', p }),
      });
      localStorage.removeItem(RESUME_KEY(name));
      setPhase({ kind: 'done', sent: r.sent.blobs, reused, dataset: r.dataset });
      list.reload();
      onChange(r.dataset);
    } catch (e) {
      setPhase({ kind: 'error', message: errorMessage(e) });
    }
  };

  const sum = picked ? summarise(picked.files) : null;
  const nameOk = DATASET_NAME.test(name);
  return (
    <fieldset>
      <legend>Dataset</legend>
      <ErrorNote error={list.error} />
      <Field label="Use one of my datasets" help="An ImageFolder tree: train/<class>/*.png and val/<class>/*.png.">
        {({ id, helpId }) => (
          <select
            id={id}
            aria-describedby={helpId}
            value={value?.id ?? ''}
            onChange={(e) => onChange(ready.find((d) => d.id === e.target.value) ?? null)}
          >
            <option value="">— choose —</option>
            {ready.map((d) => (
              <option key={d.id} value={d.id}>
                {d.name} ({d.classes.length} classes, {d.files} images)
              </option>
            ))}
          </select>
        )}
      </Field>
      <p className="or">or upload a folder</p>
      {/* biome-ignore lint/a11y/noStaticElementInteractions: the drop zone is a convenience; the button inside does the same by keyboard */}
      <div
        className={`dropzone${over ? ' over' : ''}`}
        onDragOver={(e) => {
          e.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={(e) => void onDrop(e)}
      >
        <p>Drop a dataset folder here (containing train/ and val/), or</p>
        <button type="button" className="secondary" disabled={busy} onClick={() => input.current?.click()}>
          Choose a folder…
        </button>
        <input
          id="folder-input"
          ref={input}
          className="visually-hidden"
          type="file"
          multiple
          tabIndex={-1}
          aria-label="Dataset folder"
          disabled={busy}
          onChange={(e) => {
            if (e.target.files) take(fromFileList(e.target.files));
            e.target.value = ''; // so picking the same folder again fires a change
          }}
        />
      </div>
      {picked && sum ? (
        <div className="upload-summary">
          <p>
            <strong>{picked.files.length}</strong> images in {sum.classes.length} classes ({sum.classes.join(', ')}),{' '}
            {bytes(sum.bytes)}: train {[...sum.counts.train.values()].reduce((a, b) => a + b, 0)}, val{' '}
            {[...sum.counts.val.values()].reduce((a, b) => a + b, 0)}.
          </p>
          {picked.skipped.length ? (
            <details>
              <summary>{picked.skipped.length} file(s) will not be uploaded</summary>
              <ul className="small">
                {picked.skipped.slice(0, 50).map((s) => (
                  <li key={s.path}>
                    <code>{s.path}</code>: {s.why}
                  </li>
                ))}
              </ul>
            </details>
          ) : null}
          <div className="row">
            <Field
              label="Dataset name"
              help="Letters, digits, '.', '_' or '-'. Uploading the same files again sends nothing."
            >
              {({ id, helpId }) => (
                <input
                  id={id}
                  aria-describedby={helpId}
                  aria-invalid={!nameOk || undefined}
                  value={name}
                  onChange={(e) => setName(e.target.value)}
                />
              )}
            </Field>
            <button type="button" disabled={busy || !nameOk || picked.files.length === 0} onClick={() => void upload()}>
              Upload {picked.files.length} files
            </button>
          </div>
        </div>
      ) : null}
      <UploadStatus phase={phase} />
    </fieldset>
  );
}

function UploadStatus({ phase }: { phase: Phase }) {
  if (phase.kind === 'idle') return null;
  if (phase.kind === 'error')
    return (
      <p className="note error" role="alert">
        Upload failed: {phase.message}. Pick the folder again and retry: what was sent is kept.
      </p>
    );
  if (phase.kind === 'hashing')
    return (
      <div className="progress" role="status">
        <label htmlFor="hash-progress">
          Checking files: {phase.done} of {phase.total}
        </label>
        <progress id="hash-progress" max={phase.total} value={phase.done} />
      </div>
    );
  if (phase.kind === 'uploading') {
    const { p } = phase;
    const label =
      p.phase === 'completing'
        ? 'Verifying and assembling the dataset…'
        : `Uploading: ${bytes(p.sent.bytes)} of ${bytes(p.toSend.bytes)} (${p.sent.blobs} of ${p.toSend.blobs} files)`;
    return (
      <div className="progress" role="status">
        <label htmlFor="upload-progress">{label}</label>
        <progress id="upload-progress" max={Math.max(1, p.toSend.bytes)} value={p.sent.bytes} />
      </div>
    );
  }
  return (
    <p className="note ok" role="status" data-testid="upload-done">
      Dataset <strong>{phase.dataset.name}</strong> is ready: {phase.sent} file(s) sent, {phase.reused} already on the
      server (skipped).
    </p>
  );
}
