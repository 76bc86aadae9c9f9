import { ConfigError, type ConfigErrorSource } from './errors.js';

/**
 * Collects every configuration error and warning found while loading, so the operator sees all of
 * them at once instead of fixing one per restart.
 */
export class Issues {
  readonly errors: ConfigError[] = [];
  readonly warnings: string[] = [];

  error(source: ConfigErrorSource, problem: string): void {
    this.errors.push(new ConfigError(source, problem));
  }

  /** Warnings use the same `file:line: key: problem` shape as errors. */
  warn(source: ConfigErrorSource, problem: string): void {
    this.warnings.push(new ConfigError(source, problem).message);
  }

  absorb(other: { readonly errors: readonly ConfigError[]; readonly warnings: readonly string[] }): void {
    this.errors.push(...other.errors);
    this.warnings.push(...other.warnings);
  }
}
