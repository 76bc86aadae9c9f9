/** Where a bad value came from, so the operator can go straight to it. */
export interface ConfigErrorSource {
  /** File name as the operator knows it (path as given, or its basename for well-known files). */
  file?: string;
  line?: number;
  key?: string;
}

/**
 * Bad user input: one line naming file, line and key, and what is wrong, e.g.
 * `cluster.env:7: ISTIO_META_DNS_CAPTURE: expected "true" or "false", got "yes"`.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly source: ConfigErrorSource,
    readonly problem: string,
  ) {
    super(formatConfigError(source, problem));
  }
}

/** All configuration errors found in one pass: main.ts prints each on its own line and exits 64. */
export class ConfigErrors extends Error {
  override readonly name = 'ConfigErrors';
  constructor(readonly errors: readonly ConfigError[]) {
    super(errors.map((e) => e.message).join('\n'));
  }
}

function formatConfigError(source: ConfigErrorSource, problem: string): string {
  let where = source.file ?? '';
  if (source.file !== undefined && source.line !== undefined) where += `:${source.line}`;
  const parts = [where, source.key].filter((p): p is string => p !== undefined && p !== '');
  return [...parts, problem].join(': ');
}
