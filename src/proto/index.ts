export { ProtoSchema, SECRET_TYPE_URL, codec } from './services.js';
export type { Codec, CaService, SdsService, AdsService } from './services.js';
export { loadSchema, loadProtoRoot, PROTO_FILES } from './schema.js';
export * from './messages.js';
