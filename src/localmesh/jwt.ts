import { createPrivateKey, createPublicKey } from 'node:crypto';
import { SignJWT, errors, exportPKCS8, generateKeyPair, importPKCS8, importSPKI, jwtVerify, type CryptoKey as JoseKey } from 'jose';

/** The audience istio-agent's token must carry (`istioctl x workload entry configure` requests it). */
export const ISTIO_CA_AUDIENCE = 'istio-ca';
/** Issuer of a Kubernetes projected service-account token, which the tokens here imitate. */
export const TOKEN_ISSUER = 'https://kubernetes.default.svc.cluster.local';

const ALGORITHM = 'ES256';
const SUBJECT_PATTERN = /^system:serviceaccount:([^:]+):([^:]+)$/;

export interface TokenRequest {
  readonly namespace: string;
  readonly serviceAccount: string;
  /** Default 3600, as istioctl's TokenRequest. Zero or negative yields an already-expired token. */
  readonly ttlSeconds?: number;
  /** Default `istio-ca`. */
  readonly audience?: string | readonly string[];
}

export interface TokenSubject {
  readonly namespace: string;
  readonly serviceAccount: string;
}

/** The token was rejected; the message says why, and never contains the token. */
export class TokenError extends Error {
  override readonly name = 'TokenError';
}

/**
 * Issues and checks service-account JWTs in place of the Kubernetes API server: istiod would
 * validate them with a TokenReview, here the control plane checks its own signature.
 */
export class TokenAuthority {
  readonly #privateKey: JoseKey;
  readonly #publicKey: JoseKey;
  readonly #privateKeyPem: string;

  private constructor(privateKey: JoseKey, publicKey: JoseKey, privateKeyPem: string) {
    this.#privateKey = privateKey;
    this.#publicKey = publicKey;
    this.#privateKeyPem = privateKeyPem;
  }

  /** Creates a new signing key, or reuses `keyPem` (PKCS#8, P-256) from `exportKeyPem()`. */
  static async create(keyPem?: string): Promise<TokenAuthority> {
    if (keyPem === undefined) {
      const pair = await generateKeyPair(ALGORITHM, { extractable: true });
      return new TokenAuthority(pair.privateKey, pair.publicKey, await exportPKCS8(pair.privateKey));
    }
    const privateKey = await importPKCS8(keyPem, ALGORITHM, { extractable: false });
    // jose has no "public half of this private key"; node:crypto derives it.
    const spki = createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'pem' }).toString();
    return new TokenAuthority(privateKey, await importSPKI(spki, ALGORITHM), keyPem);
  }

  exportKeyPem(): string {
    return this.#privateKeyPem;
  }

  async issue(request: TokenRequest, now: Date): Promise<string> {
    const issuedAt = Math.floor(now.getTime() / 1000);
    const ttl = request.ttlSeconds ?? 3600;
    const audience = request.audience ?? ISTIO_CA_AUDIENCE;
    return new SignJWT({
      'kubernetes.io': { namespace: request.namespace, serviceaccount: { name: request.serviceAccount } },
    })
      .setProtectedHeader({ alg: ALGORITHM, typ: 'JWT' })
      .setIssuer(TOKEN_ISSUER)
      .setSubject(`system:serviceaccount:${request.namespace}:${request.serviceAccount}`)
      .setAudience(typeof audience === 'string' ? audience : [...audience])
      .setIssuedAt(Math.min(issuedAt, issuedAt + ttl))
      .setNotBefore(Math.min(issuedAt, issuedAt + ttl))
      .setExpirationTime(issuedAt + ttl)
      .sign(this.#privateKey);
  }

  /** Checks signature, audience `istio-ca`, expiry and subject; returns the service account. */
  async verify(token: string, now: Date): Promise<TokenSubject> {
    let subject: string | undefined;
    try {
      const { payload } = await jwtVerify(token, this.#publicKey, {
        algorithms: [ALGORITHM],
        audience: ISTIO_CA_AUDIENCE,
        issuer: TOKEN_ISSUER,
        currentDate: now,
      });
      subject = payload.sub;
    } catch (err) {
      throw new TokenError(describeJoseError(err));
    }
    const match = SUBJECT_PATTERN.exec(subject ?? '');
    if (!match) throw new TokenError(`JWT subject "${subject ?? ''}" is not system:serviceaccount:<namespace>:<name>`);
    const [, namespace = '', serviceAccount = ''] = match;
    return { namespace, serviceAccount };
  }
}

function describeJoseError(err: unknown): string {
  if (err instanceof errors.JWTExpired) {
    const exp = err.payload.exp;
    return `JWT expired${typeof exp === 'number' ? ` at ${new Date(exp * 1000).toISOString()}` : ''}`;
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'JWT signature verification failed (not signed by this control plane)';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'aud') return `JWT audience ${JSON.stringify(err.payload.aud ?? null)} does not include "${ISTIO_CA_AUDIENCE}"`;
    return `JWT claim "${err.claim}" rejected: ${err.message}`;
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return 'JWT signature verification failed (unexpected algorithm)';
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return `malformed JWT: ${err.message}`;
  return `JWT rejected: ${err instanceof Error ? err.message : String(err)}`;
}
