import type { Metadata } from '@grpc/grpc-js';
import type { CaAuthority, SpiffeIdentity } from './ca-authority.js';
import { TokenError, type TokenAuthority } from './jwt.js';

/** `none`: a stream on an insecure (plaintext, unauthenticated) control plane. */
export type AuthMethod = 'jwt' | 'mtls' | 'none';

export type Caller = AuthenticatedCaller | { readonly identity: undefined; readonly authMethod: 'none' };

export interface AuthenticatedCaller {
  readonly identity: SpiffeIdentity;
  readonly authMethod: 'jwt' | 'mtls';
}

/** Whoever connects to an insecure control plane. */
export const ANONYMOUS_CALLER: Caller = { identity: undefined, authMethod: 'none' };

/** Authentication failed; the gRPC handlers turn this into status UNAUTHENTICATED. */
export class AuthenticationError extends Error {
  override readonly name = 'AuthenticationError';
}

/** The parts of a grpc-js server call that authentication looks at. */
export interface AuthenticatableCall {
  readonly metadata: Metadata;
  getAuthContext(): { sslPeerCertificate?: { raw?: Buffer } } | null;
}

/** gRPC lower-cases metadata keys: the agent's `ClusterID` header arrives as `clusterid`. */
export const CLUSTER_ID_METADATA = 'clusterid';

/**
 * istiod's two authenticators for agents on VMs, tried in istiod's order: a client certificate it
 * issued earlier, then a service-account JWT. Both the CA and ADS use it.
 */
export class Authenticator {
  constructor(
    private readonly deps: {
      readonly ca: CaAuthority;
      readonly tokens: TokenAuthority;
      readonly trustDomain: string;
      readonly clusterId: string;
    },
  ) {}

  async authenticate(call: AuthenticatableCall, now: Date): Promise<AuthenticatedCaller> {
    let certificateProblem: string | undefined;
    const peer = call.getAuthContext()?.sslPeerCertificate;
    if (peer?.raw) {
      const check = this.deps.ca.verifyClientCertificate(peer.raw, now);
      if (check.ok) return { identity: { ...check.identity, trustDomain: this.deps.trustDomain }, authMethod: 'mtls' };
      certificateProblem = check.reason;
    }

    const header = metadataString(call.metadata, 'authorization');
    const fail = (reason: string): AuthenticationError =>
      new AuthenticationError(`request authenticate failure: ${reason}${certificateProblem ? `; ${certificateProblem}` : ''}`);
    if (header === undefined) throw fail('no client certificate issued by this CA and no "authorization: Bearer <JWT>" metadata');
    if (!header.startsWith('Bearer ')) throw fail('authorization metadata is not "Bearer <JWT>"');
    const token = header.slice('Bearer '.length).trim();
    if (token === '') throw fail('empty bearer token');

    // istiod picks the cluster whose API server reviews the token from this header.
    const clusterId = metadataString(call.metadata, CLUSTER_ID_METADATA);
    if (clusterId === undefined) throw fail(`JWT sent without "${CLUSTER_ID_METADATA}" metadata (want "${this.deps.clusterId}")`);
    if (clusterId !== this.deps.clusterId) throw fail(`unknown cluster "${clusterId}" in "${CLUSTER_ID_METADATA}" metadata (want "${this.deps.clusterId}")`);

    try {
      const subject = await this.deps.tokens.verify(token, now);
      return { identity: { trustDomain: this.deps.trustDomain, ...subject }, authMethod: 'jwt' };
    } catch (err) {
      if (err instanceof TokenError) throw fail(err.message);
      throw err;
    }
  }
}

export function metadataString(metadata: Metadata, key: string): string | undefined {
  const value = metadata.get(key)[0];
  if (value === undefined) return undefined;
  return typeof value === 'string' ? value : value.toString('utf8');
}
