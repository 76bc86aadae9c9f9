export { ProtoSchema, codec } from './services.js';
export type { Codec, CaService, SdsService, AdsService } from './services.js';
export { loadSchema, loadProtoRoot, PROTO_FILES } from './schema.js';
export * from './messages.js';
export * from './type-urls.js';
