import { mkdirSync } from 'node:fs';

export interface EmbeddedS3 {
  endpoint: string;
  close(): Promise<void>;
}

/**
 * Starts an in-process S3-protocol server (s3rver) storing objects under `directory`. Used by local mode and tests;
 * credentials are s3rver's fixed pair (S3RVER / S3RVER).
 */
export async function startEmbeddedS3(opts: { directory: string; port?: number; host?: string }): Promise<EmbeddedS3> {
  mkdirSync(opts.directory, { recursive: true });
  const { default: S3rver } = await import('s3rver');
  const server = new S3rver({
    port: opts.port ?? 0,
    address: opts.host ?? '127.0.0.1',
    directory: opts.directory,
    silent: true,
    allowMismatchedSignatures: false,
  });
  const addr = await server.run();
  return {
    endpoint: `http://${opts.host ?? '127.0.0.1'}:${addr.port}`,
    close: () => server.close(),
  };
}

export const EMBEDDED_S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;
