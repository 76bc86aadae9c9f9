/**
 * Envoy's bootstrap file (SPEC §8.1; pkg/istio-agent/agent.go initializeEnvoyAgent, pkg/bootstrap).
 *
 * Which document Envoy gets, in pilot-agent's order:
 * 1. ProxyConfig `customConfigFile`: used in place, never rendered, written or deleted.
 * 2. A template override: the `templatePath` option, else env ISTIO_BOOTSTRAP, else `--templateFile`
 *    (pilot-agent copies it over proxyBootstrapTemplatePath), else ProxyConfig
 *    `proxyBootstrapTemplatePath`; relative paths resolve against the agent's cwd.
 * 3. Otherwise Istio's default template, which this agent does not execute: it builds the same
 *    document itself (renderBootstrap). An override naming the default template file
 *    (`./var/lib/istio/envoy/envoy_bootstrap_tmpl.json`) therefore also means the built-in document.
 *
 * Templates are Go text/template + sprig in Istio. This agent supports only the subset that needs no
 * template engine: a `.json` file containing no `{{` is copied verbatim. Anything else (a Go template,
 * a YAML file) is refused with a ConfigError naming the file, rather than rendered wrongly.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigError, ConfigErrors, type AgentConfig } from '../../config/index.js';
import type { XdsNode } from '../../xds/node/index.js';
import { bootstrapParams } from './bootstrap-params.js';
import { renderBootstrap } from './render-bootstrap.js';

export const BOOTSTRAP_FILE_NAME = 'envoy-rev.json';
/** Where istio-sidecar.deb installs Istio's Go template (tools/packaging/common/envoy_bootstrap.json). */
export const DEFAULT_BOOTSTRAP_TEMPLATE = './var/lib/istio/envoy/envoy_bootstrap_tmpl.json';

export interface GenerateBootstrapOptions {
  /** A template override that wins over ISTIO_BOOTSTRAP and ProxyConfig (same rules). */
  templatePath?: string;
}

export interface EnvoyBootstrap {
  /** The file Envoy is started with (`-c`): `<configPath>/envoy-rev.json`, or the customConfigFile. */
  path: string;
  /** The bootstrap document (for a customConfigFile in neither JSON nor YAML: `{}`, it is not read). */
  json: object;
  /**
   * `generated`: built by the agent; `template`: a JSON override copied verbatim; `custom`: the
   * customConfigFile, used where it is (never written here, and not to be deleted when Envoy exits).
   */
  source: 'generated' | 'template' | 'custom';
  /** The override or custom file the document came from. */
  sourceFile?: string;
  /** What writeBootstrap writes to `path` (undefined for `custom`). */
  text?: string;
  /** Non-fatal notes pilot-agent logs as warnings (ignored annotations, SotW without discovery). */
  warnings: string[];
}

/** `<configPath>/envoy-rev.json`, configPath resolved against the agent's cwd. */
export function bootstrapPath(config: AgentConfig): string {
  return path.join(path.resolve(config.cwd, config.proxyConfig.configPath), BOOTSTRAP_FILE_NAME);
}

/**
 * Decides and builds Envoy's bootstrap without touching the file system, except to read a custom or
 * override file. Throws ConfigErrors for bad input: an unsupported or unreadable override, a tracer
 * address that does not parse, and the like (pilot-agent: `failed to generate bootstrap config`).
 */
export function generateBootstrap(config: AgentConfig, node: XdsNode, options: GenerateBootstrapOptions = {}): EnvoyBootstrap {
  const custom = config.proxyConfig.customConfigFile ?? '';
  if (custom !== '') return customBootstrap(path.resolve(config.cwd, custom));

  const override = templateOverride(config, options);
  if (override !== undefined) return verbatimTemplate(override, bootstrapPath(config));

  const { params, errors, warnings } = bootstrapParams(config, node);
  if (errors.length > 0) throw new ConfigErrors(errors);
  const json = renderBootstrap(params);
  return { path: bootstrapPath(config), json, source: 'generated', text: formatBootstrap(json), warnings };
}

/**
 * Generates the bootstrap and writes it (atomically) to `<configPath>/envoy-rev.json`, creating the
 * directory with mode 0700 as pilot-agent does. A customConfigFile is left alone.
 */
export async function writeBootstrap(config: AgentConfig, node: XdsNode, options: GenerateBootstrapOptions = {}): Promise<EnvoyBootstrap> {
  const bootstrap = generateBootstrap(config, node, options);
  if (bootstrap.text === undefined) return bootstrap;
  await mkdir(path.dirname(bootstrap.path), { recursive: true, mode: 0o700 });
  const tmp = `${bootstrap.path}.tmp.${randomBytes(6).toString('hex')}`;
  try {
    await writeFile(tmp, bootstrap.text);
    await rename(tmp, bootstrap.path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return bootstrap;
}

/** Deletes a written bootstrap once Envoy has exited, as pilot-agent does; a customConfigFile is kept. */
export async function removeBootstrap(bootstrap: EnvoyBootstrap): Promise<void> {
  if (bootstrap.source !== 'custom') await rm(bootstrap.path, { force: true });
}

export function formatBootstrap(json: object): string {
  return `${JSON.stringify(json, null, 2)}\n`;
}

// ---- overrides ----

interface TemplateOverride {
  file: string;
  /** Where it was set, for messages. */
  key: string;
}

function templateOverride(config: AgentConfig, options: GenerateBootstrapOptions): TemplateOverride | undefined {
  const candidates: [string | undefined, string][] = [
    [options.templatePath, 'templatePath'],
    [config.env['ISTIO_BOOTSTRAP'], 'ISTIO_BOOTSTRAP'],
    [config.flags.templateFile, '--templateFile'],
    [config.proxyConfig.proxyBootstrapTemplatePath, 'proxyBootstrapTemplatePath'],
  ];
  const chosen = candidates.find(([value]) => value !== undefined && value !== '');
  if (chosen === undefined || chosen[0] === undefined) return undefined;
  const file = path.resolve(config.cwd, chosen[0]);
  if (file === path.resolve(config.cwd, DEFAULT_BOOTSTRAP_TEMPLATE)) return undefined;
  return { file, key: chosen[1] };
}

function verbatimTemplate(override: TemplateOverride, outputPath: string): EnvoyBootstrap {
  const fail = (problem: string): never => {
    throw new ConfigErrors([new ConfigError({ file: override.file, key: override.key }, problem)]);
  };
  if (!override.file.endsWith('.json')) {
    fail('only a plain JSON bootstrap (*.json without "{{") can be used; Go and YAML templates are not supported by this agent');
  }
  const text = readText(override.file, fail);
  if (text.includes('{{')) {
    fail('Go template bootstrap files are not supported by this agent: use a plain JSON bootstrap, or remove the override to use the built-in one');
  }
  const json = parseObject(() => JSON.parse(text) as unknown, fail);
  return { path: outputPath, json, source: 'template', sourceFile: override.file, text, warnings: [] };
}

function customBootstrap(file: string): EnvoyBootstrap {
  const fail = (problem: string): never => {
    throw new ConfigErrors([new ConfigError({ file, key: 'customConfigFile' }, problem)]);
  };
  const custom = (json: object): EnvoyBootstrap => ({ path: file, json, source: 'custom', sourceFile: file, warnings: [] });
  // Envoy picks the format by extension; a binary or text proto is passed on unread.
  if (file.endsWith('.json')) {
    const text = readText(file, fail);
    return custom(parseObject(() => JSON.parse(text) as unknown, fail));
  }
  if (file.endsWith('.yaml') || file.endsWith('.yml')) {
    const text = readText(file, fail);
    return custom(parseObject(() => parseYaml(text) as unknown, fail));
  }
  return custom({});
}

function readText(file: string, fail: (problem: string) => never): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return fail(`cannot read the bootstrap file${code === undefined ? '' : ` (${code})`}`);
  }
}

function parseObject(parse: () => unknown, fail: (problem: string) => never): object {
  let parsed: unknown;
  try {
    parsed = parse();
  } catch (err) {
    return fail(`not a valid bootstrap document: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return fail('not a valid bootstrap document: expected an object');
  return parsed;
}
