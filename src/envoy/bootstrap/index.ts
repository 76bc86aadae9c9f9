/** Envoy's bootstrap file: what pilot-agent renders to `<configPath>/envoy-rev.json` (SPEC §8.1). */
export {
  bootstrapPath,
  formatBootstrap,
  generateBootstrap,
  removeBootstrap,
  writeBootstrap,
  BOOTSTRAP_FILE_NAME,
  DEFAULT_BOOTSTRAP_TEMPLATE,
  type EnvoyBootstrap,
  type GenerateBootstrapOptions,
} from './generate-bootstrap.js';
export { BOOTSTRAP_PROTO_FILES, BOOTSTRAP_TYPE, ISTIO_PROXY_ONLY_TYPE_URLS } from './bootstrap-protos.js';
export { fromProtoJson, type ProtoJsonOptions, type ProtoJsonResult } from './proto-json.js';
