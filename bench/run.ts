/**
 * `npm run bench`: figures, not pass/fail. Everything is measured side by side in this one run, because
 * these machines are noisy: compare the rows, don't read absolute numbers against another day's.
 * `BENCH_ONLY=identity,xds,dns,status` runs some sections; `BENCH_ROUNDS` sets the rounds.
 *
 *  - identity: CSR + issuance latency, RSA 2048 vs ECDSA P-256; process start → first certificate
 *    served over SDS (built bundle and from source), and the agent's RSS once it is serving.
 *  - xds: a 20 MB push on an established stream through the agent's xDS proxy vs straight from the
 *    control plane, in interleaved rounds, as a ratio; and the agent's peak RSS. A plain TLS byte relay
 *    in Node runs alongside as a reference: what terminating TLS alone costs on the same core.
 *  - status: process start → /healthz/ready 200 with Envoy disabled and with the fake Envoy; a merged
 *    /stats/prometheus scrape with 10,000 Envoy series.
 *  - dns: dnsperf against the agent's DNS proxy and against dnsmasq serving the same 10,000 names, back
 *    to back (qps, mean and p99 latency, ratio); and the agent's RSS with a 100,000-name table.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hasTaskset, root, ROUNDS } from './common.js';
import { benchIdentity } from './identity.js';
import { benchDns } from './dns.js';
import { benchStatus } from './status.js';
import { benchXds } from './xds.js';

const only = new Set((process.env['BENCH_ONLY'] ?? 'identity,xds,dns,status').split(',').map((s) => s.trim()));
const work = mkdtempSync(path.join(os.tmpdir(), 'ivma-bench-'));
console.log(`istio-vm-agent benchmarks (${ROUNDS} rounds each; node ${process.version}; ${os.cpus().length} cores; ${hasTaskset ? 'taskset pinning' : 'no taskset'})\n`);
// The built bundle is what a VM runs: build it first.
execFileSync(process.execPath, ['--import', import.meta.resolve('tsx'), path.join(root, 'scripts/build.ts')], { stdio: 'ignore' });
try {
  if (only.has('identity')) await benchIdentity(work);
  if (only.has('xds')) await benchXds(work);
  if (only.has('dns')) await benchDns(work);
  if (only.has('status')) await benchStatus(work);
} finally {
  rmSync(work, { recursive: true, force: true });
}
