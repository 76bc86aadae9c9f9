import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

/**
 * @peculiar/x509 needs a WebCrypto provider. Setting it is idempotent, so every entry point that uses the
 * library calls this instead of relying on an import-time side effect.
 */
export function x509Library(): typeof x509 {
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  return x509;
}
