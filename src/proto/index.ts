export { ProtoSchema, SECRET_TYPE_URL } from './services.js';
export type { Codec, CaService, SdsService, AdsService } from './services.js';
export { loadSchema, PROTO_FILES } from './schema.js';
export * from './messages.js';
