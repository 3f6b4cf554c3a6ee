import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SimulatedKubelet } from './kubelet';
import { parseFieldSelector, parseLabelSelector } from './label-selector';
import { KubeApiError, RESOURCES, type ResourceType, statusObject } from './objects';
import { admitWrite, deleteObject } from './resources';
import type { ResourceStore } from './store';
import { WatchStream } from './watch-stream';

/** A request the test made the server fail on purpose (`method`, a path pattern, the Status code, how often). */
export interface InjectedFault {
  method?: string;
  path: RegExp;
  code: number;
  times: number;
}

export interface RequestRecord {
  method: string;
  path: string;
  query: string;
  status: number;
}

interface Route {
  t: ResourceType;
  namespace: string | undefined;
  name: string | undefined;
  sub: string | undefined;
}

const MAX_BODY = 3 * 1024 * 1024;

/**
 * The HTTP face of the test Kubernetes API server: the REST paths of core/v1 (pods, pods/log, secrets, events,
 * nodes) and coordination.k8s.io/v1 (leases), JSON bodies, `Status` errors, list and `?watch=1` streams with label
 * and field selectors, bearer-token auth. It keeps a request log and can fail requests on demand.
 */
export class KubeHttpServer {
  readonly requests: RequestRecord[] = [];
  readonly faults: InjectedFault[] = [];
  private readonly watches = new Set<WatchStream>();
  private readonly logStreams = new Set<ServerResponse>();
  private readonly server: Server;

  constructor(
    private readonly store: ResourceStore,
    private readonly kubelet: SimulatedKubelet,
    private readonly token: string | null,
  ) {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((e) => this.fail(res, e));
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Breaks every open watch connection (`abrupt`: reset mid-stream; otherwise a clean end, as on a timeout). */
  dropWatches(opts: { abrupt?: boolean } = {}): number {
    const n = this.watches.size;
    for (const w of [...this.watches]) opts.abrupt === false ? w.end() : w.drop();
    return n;
  }

  /** Cuts every open `pods/log?follow` stream mid-way. */
  dropLogStreams(): number {
    const n = this.logStreams.size;
    for (const r of [...this.logStreams]) r.destroy();
    this.logStreams.clear();
    return n;
  }

  get openWatches(): number {
    return this.watches.size;
  }

  async close(): Promise<void> {
    for (const w of [...this.watches]) w.drop();
    this.dropLogStreams();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';
    const record: RequestRecord = { method, path: url.pathname, query: url.search, status: 0 };
    this.requests.push(record);
    res.on('finish', () => {
      record.status = res.statusCode;
    });
    if (this.token !== null && req.headers.authorization !== `Bearer ${this.token}`)
      throw new KubeApiError(401, 'Unauthorized', 'Unauthorized');
    const fault = this.faults.find(
      (f) => (!f.method || f.method === method) && f.path.test(url.pathname) && f.times > 0,
    );
    if (fault) {
      fault.times--;
      throw new KubeApiError(fault.code, fault.code === 503 ? 'ServiceUnavailable' : 'InternalError', 'injected fault');
    }
    if (url.pathname === '/version')
      return this.json(res, 200, { major: '1', minor: '31', gitVersion: 'v1.31.0-gpulab-test' });
    const route = parseRoute(url.pathname);
    if (!route) throw new KubeApiError(404, 'NotFound', 'the server could not find the requested resource');
    const body = method === 'POST' || method === 'PUT' || method === 'DELETE' ? await readJson(req) : undefined;
    const q = url.searchParams;
    const { t, namespace, name, sub } = route;

    if (sub === 'log' && t.kind === 'Pod' && method === 'GET') return this.podLog(res, namespace!, name!, q);
    if (sub !== undefined) throw new KubeApiError(404, 'NotFound', 'the server could not find the requested resource');
    if (t.namespaced && namespace === undefined && method !== 'GET')
      throw new KubeApiError(404, 'NotFound', 'the server could not find the requested resource');
    if (name === undefined) {
      if (method === 'GET') return this.listOrWatch(res, t, namespace, q);
      if (method === 'POST') {
        const obj = await admitWrite(t, body, namespace);
        return this.json(res, 201, this.store.create(t, obj));
      }
    } else {
      if (method === 'GET') return this.json(res, 200, this.store.mustGet(t, namespace, name));
      if (method === 'PUT') {
        if (t.kind === 'Pod') throw new KubeApiError(405, 'MethodNotAllowed', 'pods are immutable in this server');
        const obj = await admitWrite(t, body, namespace, name);
        return this.json(res, 200, this.store.replace(t, obj));
      }
      if (method === 'DELETE') {
        const fromQuery = q.get('gracePeriodSeconds');
        const fromBody = (body as { gracePeriodSeconds?: number } | undefined)?.gracePeriodSeconds;
        const grace = fromQuery !== null ? Number(fromQuery) : fromBody;
        return this.json(res, 200, deleteObject(this.store, t, namespace, name, grace));
      }
    }
    throw new KubeApiError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`);
  }

  private listOrWatch(res: ServerResponse, t: ResourceType, namespace: string | undefined, q: URLSearchParams) {
    const labels = parseLabelSelector(q.get('labelSelector'));
    const fields = parseFieldSelector(q.get('fieldSelector'));
    const watch = q.get('watch');
    if (watch === 'true' || watch === '1') {
      const stream = new WatchStream(res, (w) => this.watches.delete(w));
      this.watches.add(stream);
      const timeout = q.get('timeoutSeconds');
      stream.start(
        this.store,
        { resource: t, namespace, labels, fields },
        q.get('resourceVersion'),
        timeout ? Number(timeout) : null,
      );
      return;
    }
    const rv = this.store.resourceVersion;
    const items = this.store
      .list(t, namespace, (o) => labels(o.metadata.labels) && fields(o))
      .map(({ apiVersion: _a, kind: _k, ...rest }) => rest);
    this.json(res, 200, {
      kind: `${t.kind}List`,
      apiVersion: t.group ? `${t.group}/${t.version}` : t.version,
      metadata: { resourceVersion: rv },
      items,
    });
  }

  private podLog(res: ServerResponse, namespace: string, name: string, q: URLSearchParams): void {
    const t = RESOURCES.find((r) => r.kind === 'Pod')!;
    const pod = this.store.mustGet(t, namespace, name);
    const log = this.kubelet.logs(namespace, name);
    const container = (pod.spec as { containers: Array<{ name: string }> }).containers[0]!.name;
    const wanted = q.get('container');
    if (wanted && wanted !== container)
      throw new KubeApiError(400, 'BadRequest', `container ${wanted} is not valid for pod ${name}`);
    const state = (pod.status as { containerStatuses?: Array<{ state?: Record<string, { reason?: string }> }> })
      ?.containerStatuses?.[0]?.state;
    if (!log || state?.waiting) {
      const reason = state?.waiting?.reason ?? 'ContainerCreating';
      throw new KubeApiError(
        400,
        'BadRequest',
        `container "${container}" in pod "${name}" is waiting to start: ${reason}`,
      );
    }
    const tail = q.get('tailLines');
    const limit = q.get('limitBytes');
    const since = q.get('sinceTime');
    const sinceSeconds = q.get('sinceSeconds');
    const timestamps = q.get('timestamps') === 'true';
    if (since !== null && Number.isNaN(Date.parse(since)))
      throw new KubeApiError(400, 'BadRequest', `sinceTime: invalid value "${since}"`);
    const text = log.text({
      ...(tail !== null ? { tailLines: Number(tail) } : {}),
      ...(limit !== null ? { limitBytes: Number(limit) } : {}),
      ...(since !== null ? { sinceTime: new Date(since) } : {}),
      ...(sinceSeconds !== null ? { sinceTime: new Date(Date.now() - Number(sinceSeconds) * 1000) } : {}),
      timestamps,
    });
    res.writeHead(200, { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' });
    res.write(text);
    if ((q.get('follow') === 'true' || q.get('follow') === '1') && !log.finished) {
      this.logStreams.add(res);
      res.on('close', () => this.logStreams.delete(res));
      log.follow(res, timestamps);
    } else res.end();
  }

  private json(res: ServerResponse, code: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private fail(res: ServerResponse, e: unknown): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const status =
      e instanceof KubeApiError
        ? e.toStatus()
        : statusObject(500, 'InternalError', `Internal error occurred: ${String(e)}`);
    this.json(res, Number(status.code), status);
  }
}

function parseRoute(pathname: string): Route | null {
  const parts = pathname.split('/').filter(Boolean);
  let group = '';
  let version: string;
  let rest: string[];
  if (parts[0] === 'api' && parts.length >= 2) {
    version = parts[1]!;
    rest = parts.slice(2);
  } else if (parts[0] === 'apis' && parts.length >= 3) {
    group = parts[1]!;
    version = parts[2]!;
    rest = parts.slice(3);
  } else return null;
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const t = RESOURCES.find((r) => r.plural === rest[0] && r.group === group && r.version === version);
  if (!t) return null;
  if (t.namespaced !== (namespace !== undefined) && !(t.namespaced && rest.length === 1)) return null;
  return { t, namespace, name: rest[1], sub: rest[2] };
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new KubeApiError(413, 'RequestEntityTooLarge', 'request is too large');
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text.trim()) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new KubeApiError(400, 'BadRequest', 'the body of the request was in an unknown format');
  }
}
