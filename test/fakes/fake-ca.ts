import { AgentError } from '../../src/errors.js';
import type { CertificateSigner } from '../../src/ca/index.js';
import type { Clock } from '../../src/clock.js';
import { x509Library } from '../../src/ca/index.js';
import { CaAuthority, parseSpiffeUri } from '../../src/localmesh/index.js';

/**
 * An in-process CertificateSigner backed by the local control plane's CA authority, signing at the
 * FakeClock's time, with switches to make it fail.
 */
export class FakeCa implements CertificateSigner {
  available = true;
  signed = 0;
  attempts = 0;

  private constructor(
    public authority: CaAuthority,
    private readonly clock: Clock,
    private readonly trustDomain: string,
  ) {}

  /** Switches to a brand-new root, as when a mesh's CA is replaced. */
  async replaceRoot(): Promise<void> {
    this.authority = await CaAuthority.create({ trustDomain: this.trustDomain, keyAlgorithm: 'EC', now: new Date(this.clock.now()) });
  }

  static async create(clock: Clock, trustDomain = 'cluster.local'): Promise<FakeCa> {
    return new FakeCa(await CaAuthority.create({ trustDomain, keyAlgorithm: 'EC', now: new Date(clock.now()) }), clock, trustDomain);
  }

  get rootCertPem(): string {
    return this.authority.exportState().rootCertPem;
  }

  async sign(csrPem: string, ttlSeconds: number): Promise<string[]> {
    this.attempts++;
    if (!this.available) throw new AgentError('CA_SIGN_FAILED', 'rpc error: code = Unavailable desc = CA is down');
    const x509 = x509Library();
    const csr = new x509.Pkcs10CertificateRequest(csrPem);
    // Look the SAN up by OID: lookup by class misses it on parsed CSRs in @peculiar/x509 2.2.
    const san = csr.getExtension('2.5.29.17');
    const names = san instanceof x509.SubjectAlternativeNameExtension ? san.names.items : [];
    const uri = names.find((n) => n.type === 'url')?.value ?? '';
    const requested = parseSpiffeUri(uri);
    if (!requested) throw new Error(`CSR carries no SPIFFE ID: ${uri}`);
    const leaf = await this.authority.signCsr({
      csrPem,
      identity: { ...requested, trustDomain: 'cluster.local' },
      ttlSeconds,
      now: new Date(this.clock.now()),
    });
    this.signed++;
    return [leaf.certPem, this.rootCertPem];
  }
}
