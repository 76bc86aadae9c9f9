/**
 * The local control plane in a process of its own, for benchmarks where istiod, the agent and the client
 * must not share an event loop (as they don't in production). Publishes the same N Clusters under two
 * type URLs (so two clients can be pushed to one at a time), prints one JSON line with what a client
 * needs, then takes commands on stdin:
 *
 *   push <typeUrl>   re-publish that type (a new version: every subscribed stream gets a full push) and
 *                    print `pushed <ms> <start wall> <done wall>`: the control plane's own time to prepare,
 *                    encode and hand the push to its socket, and the wall-clock times (ms) when it started
 *                    and was done. Run with --expose-gc, it first collects the previous push's garbage, so
 *                    that pause lands outside the measured push.
 *
 *   node --expose-gc --import tsx bench/control-plane-process.ts <clusters> <bytes each> <typeUrl> [<typeUrl>...]
 */
import { createInterface } from 'node:readline';
import { buildClusters, LocalControlPlane } from '../src/localmesh/index.js';

const [count = '20000', bytesEach = '1000', ...typeUrls] = process.argv.slice(2);
const cp = new LocalControlPlane();
await cp.start();
const clusters = buildClusters(Number(count), Number(bytesEach));
for (const typeUrl of typeUrls) cp.setResources(typeUrl, clusters);
const token = await cp.issueToken({ namespace: 'istio-demo', serviceAccount: 'vm' });
process.stdout.write(`${JSON.stringify({ address: cp.address, rootCertPem: cp.rootCertPem, token })}\n`);
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const [command, typeUrl] = line.split(' ');
  if (command !== 'push' || !typeUrl) return;
  globalThis.gc?.();
  const started = performance.now();
  cp.setResources(typeUrl, clusters);
  const done = performance.now();
  const wall = (t: number) => (performance.timeOrigin + t).toFixed(3);
  process.stdout.write(`pushed ${(done - started).toFixed(1)} ${wall(started)} ${wall(done)}\n`);
});
lines.on('close', () => {
  void cp.close().then(() => process.exit(0));
});
