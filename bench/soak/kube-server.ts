/**
 * The test Kubernetes API server for the soak (bench/soak/run.ts --launcher kubernetes), in a process of its own as a
 * cluster is: the soak measures the scheduler's process, not the cluster's. Its simulated kubelet runs each trainer
 * pod's container as a child process of this one.
 *
 * Config: one JSON argument {kubeconfig, namespace, image, command, nodes, gpusPerNode}: `nodes` nodes labelled
 * `gpulab.dev/flavor=local` with `gpusPerNode` GPUs each; the image's entrypoint is `command`. Writes the kubeconfig
 * file, then prints one JSON line {url} when it serves. On SIGTERM it stops every pod's process, prints one JSON line
 * with its own figures (requests served, pods created, RSS) and exits.
 */
import { REPO_ROOT, startTestKube } from '@gpulab/testing';

interface KubeServerConfig {
  kubeconfig: string;
  namespace: string;
  image: string;
  command: string[];
  nodes: number;
  gpusPerNode: number;
}

async function main() {
  const c = JSON.parse(process.argv[2] ?? '{}') as KubeServerConfig;
  const kube = await startTestKube({
    namespace: c.namespace,
    nodes: Array.from({ length: c.nodes }, (_, i) => ({
      name: `gpu-node-${i + 1}`,
      gpus: c.gpusPerNode,
      labels: { 'gpulab.dev/flavor': 'local' },
    })),
    images: { [c.image]: c.command },
    cwd: REPO_ROOT,
    baseEnv: { PATH: process.env.PATH },
  });
  let podsCreated = 0;
  kube.store.subscribe((e) => {
    if (e.resource.plural === 'pods' && e.type === 'ADDED') podsCreated++;
  });
  kube.writeKubeconfig(c.kubeconfig);
  process.stdout.write(`${JSON.stringify({ url: kube.url })}\n`);
  process.on('SIGTERM', () => {
    const requests = kube.http.requests.length;
    void kube.close().finally(() => {
      process.stdout.write(
        `${JSON.stringify({
          requests,
          pods_created: podsCreated,
          rss_mb: Math.round(process.memoryUsage().rss / 1024 / 1024),
        })}\n`,
      );
      process.exit(0);
    });
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
