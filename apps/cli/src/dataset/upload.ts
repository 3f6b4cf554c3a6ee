/**
 * A dataset folder to a ready dataset on the server: check the layout, hash (cached), then the SDK's resumable
 * upload — only what the server lacks is sent, in parallel, with a progress bar on a terminal — recording the
 * session first so an interrupted run resumes when run again.
 */
import { type Dataset, type GpulabClient, type UploadSession, uploadDataset } from '@gpulab/sdk';
import type { Ctx } from '../context';
import { CliError, EXIT, toCliError } from '../exit-codes';
import { bytes } from '../format';
import { ProgressLine } from '../progress';
import { DatasetFolderError, type FolderScan, scanFolder } from './folder';
import { contentDigest, defaultDatasetName, hashFiles, toDatasetFiles } from './hash';
import { clearUploadState, loadUploadState, saveUploadState } from './state';

export interface FolderUpload {
  scan: FolderScan;
  dataset: Dataset;
  session: UploadSession;
  resumed: boolean;
  /** What this run sent. */
  sent: { blobs: number; bytes: number };
}

/** Scans and checks the folder; a bad layout is exit 6 with every problem by path. */
export async function checkFolder(ctx: Ctx, dir: string): Promise<FolderScan> {
  try {
    const scan = await scanFolder(dir);
    for (const s of scan.skipped.slice(0, 5)) ctx.note(`note: skipping ${s.path} (${s.reason})`);
    if (scan.skipped.length > 5) ctx.note(`note: skipping ${scan.skipped.length - 5} more files`);
    return scan;
  } catch (e) {
    if (e instanceof DatasetFolderError)
      throw new CliError(
        e.message,
        EXIT.DATASET,
        'expected DIR/train/<class>/<image> and DIR/val/<class>/<image>, with the same classes in both',
      );
    throw e;
  }
}

export function describeScan(scan: FolderScan): string {
  const n = (split: 'train' | 'val') => Object.values(scan.counts[split]).reduce((a, b) => a + b, 0);
  return (
    `${scan.files.length} images (${bytes(scan.bytes)}) in ${scan.classes.length} classes ` +
    `(${scan.classes.slice(0, 6).join(', ')}${scan.classes.length > 6 ? ', …' : ''}): ` +
    `${n('train')} train, ${n('val')} val`
  );
}

export async function uploadFolder(
  ctx: Ctx,
  client: GpulabClient,
  scan: FolderScan,
  o: { name?: string; concurrency?: number },
): Promise<FolderUpload> {
  const hashBar = new ProgressLine(ctx.io.stderr, ctx.tty);
  const hashed = await hashFiles(ctx.env, scan.root, scan.files, {
    signal: ctx.signal,
    onProgress: (files, done) => hashBar.update('hashing  ', done, scan.bytes, `${files}/${scan.files.length} files`),
  });
  hashBar.finish();
  const digest = contentDigest(hashed);
  const name = o.name ?? defaultDatasetName(scan.root, digest);
  const server = ctx.settings.url;
  const previous = loadUploadState(ctx.env, scan.root, digest, server);

  const bar = new ProgressLine(ctx.io.stderr, ctx.tty);
  let sessionId: string | null = null;
  try {
    const r = await uploadDataset(client, {
      name,
      files: toDatasetFiles(hashed),
      resume: previous?.name === name ? previous.sessionId : null,
      concurrency: o.concurrency ?? 4,
      signal: ctx.signal,
      onSession: (s, resumed) => {
        sessionId = s.id;
        saveUploadState(ctx.env, scan.root, {
          sessionId: s.id,
          server,
          name,
          digest,
          startedAt: new Date().toISOString(),
        });
        const have = s.files - s.pending.files;
        ctx.note(
          `${resumed ? 'resuming upload session' : 'upload session'} ${s.id}: ` +
            `${s.pending.files} of ${s.files} files to send (${bytes(s.pending.bytes)}), ${have} already on the server`,
        );
      },
      onProgress: (p) => {
        if (p.phase === 'uploading' && p.toSend.bytes > 0)
          bar.update(
            'uploading',
            p.sent.bytes,
            p.toSend.bytes,
            `${p.sent.blobs}/${p.toSend.blobs} files ${bytes(p.sent.bytes)}/${bytes(p.toSend.bytes)} ` +
              bar.rate(p.sent.bytes, p.toSend.bytes),
          );
        if (p.phase === 'completing') bar.finish();
      },
    });
    bar.finish();
    clearUploadState(ctx.env, scan.root);
    const t = r.session.transfer;
    ctx.note(
      `dataset ${r.dataset.name} ready: ${r.dataset.uri} ` +
        `(sent ${r.sent.blobs} files, ${bytes(r.sent.bytes)}; ${t.blobsReused} reused from earlier uploads)`,
    );
    return { scan, dataset: r.dataset, session: r.session, resumed: r.resumed, sent: r.sent };
  } catch (e) {
    bar.finish();
    if (ctx.signal.aborted && sessionId)
      throw new CliError(
        `upload interrupted (session ${sessionId} kept)`,
        EXIT.INTERRUPTED,
        'run the same command again to resume: only the files not yet sent will be uploaded',
      );
    if (!sessionId) throw e;
    const c = toCliError(e, server);
    throw new CliError(c.message, c.exit, c.hint ?? `run the same command again to resume upload ${sessionId}`, c.code);
  }
}
