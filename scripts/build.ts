/**
 * `npm run build`: bundles the agent into dist/pilot-agent.js (one ESM file, Node 20) and writes the
 * protobuf schema it speaks as a precompiled JSON descriptor beside it, so the built agent neither
 * parses .proto files at start-up nor needs @grpc/grpc-js-xds installed. The native batched-UDP module
 * the DNS proxy uses (built by `npm ci`) is copied beside them when it exists.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { loadSchema } from '../src/proto/schema.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
mkdirSync(dist, { recursive: true });

const started = performance.now();
await build({
  entryPoints: [path.join(root, 'src/main.ts')],
  outfile: path.join(dist, 'pilot-agent.js'),
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: 'linked',
  legalComments: 'linked',
  // Bundled CommonJS dependencies still call require(): give the ESM bundle one.
  banner: {
    js: "#!/usr/bin/env node\nimport { createRequire as __createRequire } from 'node:module';\nconst require = __createRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
chmodSync(path.join(dist, 'pilot-agent.js'), 0o755);
writeFileSync(path.join(dist, 'protos.json'), JSON.stringify(loadSchema().toJSON()));
const nativeUdp = path.join(root, 'build/Release/udp_batch.node');
const built = ['dist/pilot-agent.js', 'dist/protos.json'];
if (existsSync(nativeUdp)) {
  copyFileSync(nativeUdp, path.join(dist, 'udp_batch.node'));
  built.push('dist/udp_batch.node');
} else {
  rmSync(path.join(dist, 'udp_batch.node'), { force: true });
  console.warn('build/Release/udp_batch.node is missing (npm ci builds it): the DNS proxy will use node:dgram');
}
console.log(`built ${built.join(', ')} in ${Math.round(performance.now() - started)} ms`);
