declare module 's3rver' {
  import type { AddressInfo } from 'node:net';
  export default class S3rver {
    constructor(options: Record<string, unknown>);
    run(): Promise<AddressInfo>;
    close(): Promise<void>;
    /** Koa's middleware stack (S3rver is a Koa app); the router is the last entry. */
    middleware: Array<(ctx: S3rverContext, next: () => Promise<void>) => Promise<void>>;
  }
  export interface S3rverContext {
    method: string;
    req: { url?: string; headers: Record<string, string | string[] | undefined> };
  }
}
declare module 's3rver/lib/models/error' {
  export default class S3Error extends Error {
    constructor(code: string, message: string, detail?: Record<string, string>);
  }
}
