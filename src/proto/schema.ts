import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

/**
 * Loads the protobuf schema the agent speaks: Istio's CA service (our own .proto, in proto/), and Envoy's
 * xDS/SDS protos as shipped by @grpc/grpc-js-xds. Real protobuf encoding end to end, no hand-rolled wire code.
 *
 * A built agent (dist/) loads a precompiled JSON descriptor instead of parsing .proto files.
 */
export const PROTO_FILES = [
  'istio/v1/auth/ca.proto',
  'istio/networking/nds/v1/nds.proto',
  'envoy/service/discovery/v3/ads.proto',
  'envoy/service/secret/v3/sds.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
] as const;

const here = path.dirname(fileURLToPath(import.meta.url));

function protoRoots(): string[] {
  const require = createRequire(import.meta.url);
  const xdsPackage = path.dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
  const deps = path.join(xdsPackage, 'deps');
  const protobufjsDir = path.dirname(require.resolve('protobufjs/package.json'));
  return [
    path.resolve(here, '../../proto'),
    path.join(deps, 'envoy-api'),
    path.join(deps, 'xds'),
    path.join(deps, 'googleapis'),
    path.join(deps, 'protoc-gen-validate'),
    protobufjsDir,
  ];
}

/** The descriptor that `npm run build` writes next to the bundle. */
const BUNDLED_DESCRIPTOR = path.join(here, 'protos.json');

export function loadSchema(): protobuf.Root {
  if (existsSync(BUNDLED_DESCRIPTOR)) {
    return protobuf.Root.fromJSON(JSON.parse(requireText(BUNDLED_DESCRIPTOR)) as protobuf.INamespace);
  }
  return loadProtoRoot(PROTO_FILES);
}

/** Parses .proto files from our proto/ folder and the protos @grpc/grpc-js-xds ships (proto field names kept). */
export function loadProtoRoot(files: readonly string[]): protobuf.Root {
  const roots = protoRoots();
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    if (path.isAbsolute(target)) return target;
    for (const dir of roots) {
      const candidate = path.join(dir, target);
      if (existsSync(candidate)) return candidate;
    }
    return target; // protobufjs then serves google/protobuf/*.proto from its built-in copies
  };
  root.loadSync([...files], { keepCase: true });
  root.resolveAll();
  return root;
}

function requireText(file: string): string {
  const require = createRequire(import.meta.url);
  const fs = require('node:fs') as typeof import('node:fs');
  return fs.readFileSync(file, 'utf8');
}
