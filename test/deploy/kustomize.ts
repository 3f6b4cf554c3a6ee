import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments, parse as parseYaml } from 'yaml';

export type Manifest = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [k: string]: unknown };
  [k: string]: unknown;
};

interface Kustomization {
  namespace?: string;
  resources?: string[];
  images?: Array<{ name: string; newName?: string; newTag?: string }>;
  replicas?: Array<{ name: string; count: number }>;
  patches?: Array<{ target: { kind?: string; name?: string }; patch: string }>;
}

interface PatchOp {
  op: 'add' | 'replace' | 'remove';
  path: string;
  value?: unknown;
}

/** Kinds that live outside namespaces (the subset our manifests use). */
const CLUSTER_SCOPED = new Set(['ClusterRole', 'ClusterRoleBinding', 'Namespace', 'PersistentVolume', 'StorageClass']);
const WORKLOADS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'Job', 'ReplicaSet']);

/**
 * Renders a kustomization the way `kubectl kustomize` does, for the features deploy/ uses: resources (files and
 * directories), namespace (also ServiceAccount subjects of bindings left at `default`), images, replicas and
 * JSON 6902 patches. Anything else in a kustomization.yaml is an error, so the subset cannot silently drift; where
 * kubectl is installed, the manifests test also compares this rendering with kubectl's.
 */
export function renderKustomization(dir: string): Manifest[] {
  const k = parseYaml(readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8')) as Kustomization &
    Record<string, unknown>;
  const unknown = Object.keys(k).filter(
    (key) => !['apiVersion', 'kind', 'namespace', 'resources', 'images', 'replicas', 'patches'].includes(key),
  );
  if (unknown.length) throw new Error(`${dir}: kustomize features not rendered here: ${unknown.join(', ')}`);
  let out: Manifest[] = [];
  for (const r of k.resources ?? []) {
    const p = path.join(dir, r);
    if (statSync(p).isDirectory()) out.push(...renderKustomization(p));
    else
      out.push(
        ...parseAllDocuments(readFileSync(p, 'utf8'))
          .map((d) => d.toJS() as Manifest | null)
          .filter((m): m is Manifest => !!m),
      );
  }
  if (k.namespace) out = out.map((m) => withNamespace(m, k.namespace!));
  for (const img of k.images ?? []) for (const m of out) for (const c of containersOf(m)) retag(c, img);
  for (const r of k.replicas ?? [])
    for (const m of out)
      if (WORKLOADS.has(m.kind) && m.metadata.name === r.name) (m.spec as { replicas?: number }).replicas = r.count;
  for (const p of k.patches ?? []) {
    const ops = parseYaml(p.patch) as PatchOp[];
    const targets = out.filter(
      (m) => (!p.target.kind || m.kind === p.target.kind) && (!p.target.name || m.metadata.name === p.target.name),
    );
    if (!targets.length) throw new Error(`${dir}: patch target ${JSON.stringify(p.target)} matches nothing`);
    for (const m of targets) for (const op of ops) applyOp(m, op);
  }
  return out;
}

function withNamespace(m: Manifest, ns: string): Manifest {
  const copy = structuredClone(m);
  if (!CLUSTER_SCOPED.has(m.kind)) copy.metadata.namespace = ns;
  if (m.kind === 'RoleBinding' || m.kind === 'ClusterRoleBinding')
    for (const s of (copy.subjects ?? []) as Array<{ kind: string; namespace?: string }>)
      if (s.kind === 'ServiceAccount' && (s.namespace === undefined || s.namespace === 'default')) s.namespace = ns;
  return copy;
}

function containersOf(m: Manifest): Array<{ image?: string }> {
  const spec = (
    WORKLOADS.has(m.kind)
      ? (m.spec as { template?: { spec?: unknown } })?.template?.spec
      : m.kind === 'Pod'
        ? m.spec
        : null
  ) as { containers?: Array<{ image?: string }>; initContainers?: Array<{ image?: string }> } | null;
  return [...(spec?.containers ?? []), ...(spec?.initContainers ?? [])];
}

function retag(c: { image?: string }, img: { name: string; newName?: string; newTag?: string }): void {
  if (!c.image) return;
  const at = c.image.lastIndexOf(':');
  const [name, tag] =
    at > c.image.lastIndexOf('/') ? [c.image.slice(0, at), c.image.slice(at + 1)] : [c.image, undefined];
  if (name !== img.name) return;
  c.image = `${img.newName ?? name}${(img.newTag ?? tag) ? `:${img.newTag ?? tag}` : ''}`;
}

function applyOp(doc: Record<string, unknown>, op: PatchOp): void {
  const parts = op.path
    .split('/')
    .slice(1)
    .map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'));
  const last = parts.pop()!;
  let cur: unknown = doc;
  for (const p of parts) {
    cur = (cur as Record<string, unknown>)[p];
    if (cur === undefined) throw new Error(`patch path ${op.path} does not exist`);
  }
  if (Array.isArray(cur)) {
    const i = last === '-' ? cur.length : Number(last);
    if (op.op !== 'add' && !(i in cur)) throw new Error(`patch ${op.op}: ${op.path} does not exist`);
    if (op.op === 'remove') cur.splice(i, 1);
    else cur.splice(i, op.op === 'replace' ? 1 : 0, op.value);
    return;
  }
  const parent = cur as Record<string, unknown>;
  if (op.op !== 'add' && !(last in parent)) throw new Error(`patch ${op.op}: ${op.path} does not exist`);
  if (op.op === 'remove') delete parent[last];
  else parent[last] = op.value;
}

/** `kubectl kustomize DIR`, parsed; null when kubectl is not installed. */
export function kubectlKustomize(dir: string): Manifest[] | null {
  const candidates = (process.env.PATH ?? '').split(path.delimiter).map((d) => path.join(d, 'kubectl'));
  if (!candidates.some((c) => existsSync(c))) return null;
  const r = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`kubectl kustomize ${dir} failed: ${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as Manifest | null)
    .filter((m): m is Manifest => !!m);
}
