/**
 * The bootstrap file pilot-agent writes for proxyless gRPC applications (pkg/istio-agent/grpcxds):
 * they read it through GRPC_XDS_BOOTSTRAP and reach istiod through the agent's xDS socket.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { AgentConfig } from '../../config/index.js';
import type { JsonLike } from '../../proto/index.js';
import { marshalIndentGo, sortObjectKeysDeep } from './go-json.js';
import type { XdsLocality, XdsNode } from './node-metadata.js';

/** GRPC_XDS_BOOTSTRAP's default, relative to the agent's working directory. */
export const DEFAULT_GRPC_BOOTSTRAP_FILE = './etc/istio/proxy/grpc-bootstrap.json';
/** gRPC servers subscribe to this Listener name, `%s` being their listening `ip:port`. */
export const GRPC_SERVER_LISTENER_NAME_TEMPLATE = 'xds.istio.io/grpc/lds/inbound/%s';
/** How often gRPC re-reads the certificate files (pilot-agent's fixed 15 minutes). */
export const GRPC_CERT_REFRESH_INTERVAL = '900s';

export interface GrpcBootstrap {
  xds_servers: { server_uri: string; channel_creds: { type: string }[]; server_features: string[] }[];
  node: {
    id: string;
    metadata: Record<string, JsonLike>;
    locality: XdsLocality;
    /**
     * Always null. pilot-agent writes Envoy's Node struct with Go's encoding/json, which emits this
     * unexported-oneof wrapper as a null key; kept so the file matches byte for byte. gRPC ignores it.
     */
    UserAgentVersionType: null;
  };
  certificate_providers?: {
    default: {
      plugin_name: 'file_watcher';
      config: { certificate_file: string; private_key_file: string; ca_certificate_file: string; refresh_interval: string };
    };
  };
  server_listener_resource_name_template: string;
}

/**
 * Where the bootstrap goes: GRPC_XDS_BOOTSTRAP resolved against the working directory, or undefined
 * when it is set to '' (pilot-agent then writes none).
 */
export function grpcBootstrapPath(config: AgentConfig): string | undefined {
  const configured = config.env['GRPC_XDS_BOOTSTRAP'] ?? DEFAULT_GRPC_BOOTSTRAP_FILE;
  return configured === '' ? undefined : path.resolve(config.cwd, configured);
}

/**
 * The bootstrap for `node` (from buildNode). Its metadata is the node's typed part plus
 * `GENERATOR: grpc`, which makes istiod answer with gRPC-flavoured resources.
 *
 * pilot-agent writes `unix:///` + its socket path relative to the working directory
 * (`unix:///etc/istio/proxy/XDS`), which names the right socket only because the agent runs in `/`.
 * Here the socket path and the certificate directory are absolute, so the URI is `unix://` + that
 * path: the same text when the agent runs in `/`, and correct for an application in any directory.
 */
export function buildGrpcBootstrap(config: AgentConfig, node: XdsNode): GrpcBootstrap {
  const socketPath = path.resolve(config.cwd, config.xds.socketPath);
  const locality: XdsLocality = {};
  if (node.locality?.region !== undefined) locality.region = node.locality.region;
  if (node.locality?.zone !== undefined) locality.zone = node.locality.zone;
  if (node.locality?.sub_zone !== undefined) locality.sub_zone = node.locality.sub_zone;
  const metadata = sortObjectKeysDeep({ ...node.typedMetadata, GENERATOR: 'grpc' });

  const bootstrap: GrpcBootstrap = {
    xds_servers: [{ server_uri: `unix://${socketPath}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: { id: node.id, metadata, locality, UserAgentVersionType: null },
    server_listener_resource_name_template: GRPC_SERVER_LISTENER_NAME_TEMPLATE,
  };
  const certDir = config.secrets.outputCertsDir;
  if (certDir === '') return bootstrap;
  // Rebuilt so certificate_providers comes before the listener template, as pilot-agent writes it.
  return {
    xds_servers: bootstrap.xds_servers,
    node: bootstrap.node,
    certificate_providers: {
      default: {
        plugin_name: 'file_watcher',
        config: {
          certificate_file: path.join(certDir, 'cert-chain.pem'),
          private_key_file: path.join(certDir, 'key.pem'),
          ca_certificate_file: path.join(certDir, 'root-cert.pem'),
          refresh_interval: GRPC_CERT_REFRESH_INTERVAL,
        },
      },
    },
    server_listener_resource_name_template: bootstrap.server_listener_resource_name_template,
  };
}

/** The file's text, formatted as pilot-agent's json.MarshalIndent does (no trailing newline). */
export function formatGrpcBootstrap(bootstrap: GrpcBootstrap): string {
  return marshalIndentGo(bootstrap);
}

/**
 * Writes the bootstrap atomically (temporary file in the same directory, then rename), mode 0644,
 * creating missing parent directories with mode 0700 as pilot-agent does.
 */
export async function writeGrpcBootstrap(file: string, bootstrap: GrpcBootstrap): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp.${randomBytes(6).toString('hex')}`;
  try {
    await writeFile(tmp, formatGrpcBootstrap(bootstrap), { mode: 0o644 });
    // The mode is set explicitly, so the umask does not narrow it.
    await chmod(tmp, 0o644);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
