import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { type KubeletOptions, SimulatedKubelet } from './kubelet';
import type { KubeObject } from './objects';
import { GPU } from './pod-scheduler';
import { admitWrite } from './resources';
import { type InjectedFault, KubeHttpServer } from './server';
import { ResourceStore } from './store';
import { stopValidator } from './validate';

export { type KubeletOptions, SimulatedKubelet } from './kubelet';
export type { KubeObject } from './objects';
export { checkManifest } from './semantics';
export type { InjectedFault, RequestRecord } from './server';
export { ResourceStore } from './store';
export { assertValidManifest, stopValidator, validateSchema } from './validate';

export interface TestNode {
  name: string;
  gpus: number;
  labels?: Record<string, string>;
  taints?: Array<{ key: string; value?: string; effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute' }>;
}

export interface TestKubeOptions extends KubeletOptions {
  /** Nodes that exist from the start. */
  nodes?: TestNode[];
  /** Namespace written into the kubeconfig's context. */
  namespace?: string;
}

/** The pieces `KubeConfig.loadFromOptions` takes (the client's own option names). */
export interface KubeconfigOptions {
  clusters: Array<{ name: string; server: string; skipTLSVerify: boolean }>;
  users: Array<{ name: string; token: string }>;
  contexts: Array<{ name: string; cluster: string; user: string; namespace: string }>;
  currentContext: string;
}

export interface TestKube {
  url: string;
  token: string;
  namespace: string;
  store: ResourceStore;
  kubelet: SimulatedKubelet;
  http: KubeHttpServer;
  /** Options for `new KubeConfig().loadFromOptions(...)`. */
  kubeconfig(): KubeconfigOptions;
  /** Writes a kubeconfig file (JSON, which is YAML) for clients that read one. */
  writeKubeconfig(file: string): void;
  addNode(n: TestNode): Promise<KubeObject>;
  /** Deletes a node as the cloud provider would when a machine dies: its pods die and are deleted. */
  deleteNode(name: string): void;
  createSecret(name: string, data: Record<string, string>, namespace?: string): Promise<void>;
  pods(namespace?: string): KubeObject[];
  events(namespace?: string): KubeObject[];
  /** Forgets watch history (etcd compaction): watches resuming from older resourceVersions get 410 Gone. */
  compact(): void;
  dropWatches(opts?: { abrupt?: boolean }): number;
  /** Cuts every open `pods/log?follow` stream. */
  dropLogStreams(): number;
  /** Makes the next `times` matching requests fail with `code`. */
  inject(fault: Omit<InjectedFault, 'times'> & { times?: number }): void;
  close(): Promise<void>;
}

const NODES = ResourceStore.type('nodes');
const PODS = ResourceStore.type('pods');
const SECRETS = ResourceStore.type('secrets');
const EVENTS = ResourceStore.type('events');

/**
 * A test Kubernetes API server on a loopback port, with a simulated scheduler and kubelet that run pods' container
 * commands as local processes. Speaks the real REST and watch protocol, so `@kubernetes/client-node` talks to it
 * unchanged; every document written through it is validated with kubernetes-models.
 */
export async function startTestKube(opts: TestKubeOptions = {}): Promise<TestKube> {
  const store = new ResourceStore();
  const kubelet = new SimulatedKubelet(store, opts);
  const token = randomBytes(16).toString('hex');
  const http = new KubeHttpServer(store, kubelet, token);
  const url = await http.listen();
  const namespace = opts.namespace ?? 'default';

  const addNode = async (n: TestNode) => {
    const node = await admitWrite(
      NODES,
      {
        metadata: { name: n.name, labels: { 'kubernetes.io/hostname': n.name, ...n.labels } },
        spec: { ...(n.taints?.length ? { taints: n.taints } : {}) },
        status: {
          capacity: { cpu: '16', memory: '64Gi', pods: '110', [GPU]: String(n.gpus) },
          allocatable: { cpu: '16', memory: '64Gi', pods: '110', [GPU]: String(n.gpus) },
          conditions: [
            { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status' },
          ],
        },
      },
      undefined,
    );
    return store.create(NODES, node);
  };
  for (const n of opts.nodes ?? []) await addNode(n);

  const kubeconfig = (): KubeconfigOptions => ({
    clusters: [{ name: 'gpulab-test', server: url, skipTLSVerify: true }],
    users: [{ name: 'gpulab-test', token }],
    contexts: [{ name: 'gpulab-test', cluster: 'gpulab-test', user: 'gpulab-test', namespace }],
    currentContext: 'gpulab-test',
  });

  return {
    url,
    token,
    namespace,
    store,
    kubelet,
    http,
    kubeconfig,
    writeKubeconfig(file) {
      const doc = {
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'gpulab-test', cluster: { server: url, 'insecure-skip-tls-verify': true } }],
        users: [{ name: 'gpulab-test', user: { token } }],
        contexts: [{ name: 'gpulab-test', context: { cluster: 'gpulab-test', user: 'gpulab-test', namespace } }],
        'current-context': 'gpulab-test',
      };
      writeFileSync(file, JSON.stringify(doc, null, 2), { mode: 0o600 });
    },
    addNode,
    deleteNode(name) {
      if (!store.remove(NODES, undefined, name)) throw new Error(`no node ${name}`);
    },
    async createSecret(name, data, ns = namespace) {
      store.create(SECRETS, await admitWrite(SECRETS, { metadata: { name }, type: 'Opaque', stringData: data }, ns));
    },
    pods: (ns = namespace) => store.list(PODS, ns),
    events: (ns = namespace) => store.list(EVENTS, ns),
    compact: () => store.compact(),
    dropWatches: (o) => http.dropWatches(o),
    dropLogStreams: () => http.dropLogStreams(),
    inject(fault) {
      http.faults.push({ ...fault, times: fault.times ?? 1 });
    },
    async close() {
      kubelet.close();
      await http.close();
      await stopValidator();
    },
  };
}
