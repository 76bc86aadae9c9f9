import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { LocalControlPlane } from '../../src/localmesh/index.js';
import { AgentProcess, MAIN, TSX_LOADER } from '../support/agent-process.js';
import { TempDirs } from '../support/tmp.js';
import { scenarioMesh, writeVmFiles } from '../support/vm-files.js';

/** No user mistake may print a stack trace: these are the shapes of one. */
function assertNoStackTrace(lines: readonly string[]): void {
  for (const line of lines) assert.doesNotMatch(line, /^\s+at .+\(.*:\d+:\d+\)$|^\s+at .+:\d+:\d+$|node:internal/, `stack trace line: ${line}`);
}

describe('agent start-up with bad input (whole process)', function () {
  this.timeout(30_000);
  const dirs = new TempDirs();
  let cp: LocalControlPlane;
  before(async () => {
    cp = new LocalControlPlane();
    await cp.start();
  });
  after(() => cp.close());
  afterEach(() => dirs.cleanup());

  it('reports every mistake at once, one line each naming file, line or key, and exits 64', async () => {
    const cwd = dirs.make();
    writeVmFiles(cwd, {
      clusterEnv: { ISTIO_META_DNS_CAPTURE: "'yes'", ISTIO_METAJSON_LABELS: "'{\"app\":'" },
      mesh: `${scenarioMesh(cp.address)}  proxyAdminPort: 99999\n`,
      token: '',
    });
    const { code, stdout, stderr } = await AgentProcess.run({ cwd, env: { CA_ADDR: cp.address } });
    assert.equal(code, 64, stderr.join('\n'));
    const errors = stderr.filter((l) => l !== '');
    assert.ok(errors.every((l) => l.startsWith('Error: ')), errors.join('\n'));
    const text = errors.join('\n');
    assert.match(text, /cluster\.env:\d+: ISTIO_META_DNS_CAPTURE: .*"yes"/);
    assert.match(text, /cluster\.env:\d+: ISTIO_METAJSON_LABELS: .*JSON/);
    assert.match(text, /mesh:\d+: defaultConfig\.proxyAdminPort: .*99999/);
    assert.match(text, /root-cert\.pem/);
    assert.match(text, /istio-token.*empty/);
    assert.ok(errors.length >= 5, text);
    assertNoStackTrace([...stdout, ...stderr]);
  });

  it('rejects an unknown log level with one line and exit 64', async () => {
    const cwd = dirs.make();
    writeVmFiles(cwd, { mesh: scenarioMesh(cp.address), rootCertPem: cp.rootCertPem, token: 'x' });
    const { code, stderr, stdout } = await AgentProcess.run({ cwd, args: ['--log_output_level=sds:verbose'] });
    assert.equal(code, 64);
    assert.deepEqual(stderr.filter((l) => l !== ''), ['Error: --log_output_level: invalid level "verbose" for scope "sds" (want one of debug, info, warn, error, fatal, none)']);
    assertNoStackTrace([...stdout, ...stderr]);
  });

  it('says which file is missing when there is neither root certificate nor token', async () => {
    const cwd = dirs.make();
    writeVmFiles(cwd, { mesh: scenarioMesh(cp.address) });
    const { code, stderr } = await AgentProcess.run({ cwd, env: { CA_ADDR: cp.address } });
    assert.equal(code, 64);
    const text = stderr.join('\n');
    assert.match(text, new RegExp(`${path.join(cwd, 'etc/certs/root-cert.pem').replace(/[/.]/g, '\\$&')}`));
    assert.match(text, /istio-token/);
  });

  it('ignores unknown flags, as pilot-agent does, and fails cleanly on an invalid proxy type', () => {
    const cwd = dirs.make();
    writeFileSync(path.join(cwd, 'placeholder'), '');
    const result = spawnSync(process.execPath, ['--import', TSX_LOADER, MAIN, 'proxy', 'gateway-ish', '--no-such-flag=1'], { cwd, encoding: 'utf8' });
    assert.equal(result.status, 255);
    assert.equal(result.stderr.trim(), 'Error: Invalid proxy Type: gateway-ish');
  });
});
