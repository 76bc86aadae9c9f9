import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { ConfigErrors } from '../config/index.js';
import { parseMeshYaml } from './mesh-yaml.js';

const SCENARIO = new URL('../../test/fixtures/localmesh/scenario.yaml', import.meta.url);

/** The messages of the ConfigErrors `fn` throws. */
function errorsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigErrors) return err.errors.map((e) => e.message);
    throw err;
  }
  assert.fail('expected ConfigErrors');
}

function serviceEntry(spec: string, metadata = '  name: svc\n  namespace: istio-demo'): string {
  return `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n${metadata}\nspec:\n${spec}\n`;
}

describe('parseMeshYaml', () => {
  it('reads the scenario WorkloadGroup and ServiceEntries as an operator writes them', async () => {
    const resources = parseMeshYaml(await readFile(SCENARIO, 'utf8'), { fileName: 'scenario.yaml' });
    assert.deepEqual(
      resources.map((r) => `${r.kind} ${r.metadata.namespace}/${r.metadata.name}`),
      ['WorkloadGroup istio-demo/nginx', 'ServiceEntry istio-demo/httpbin-external', 'ServiceEntry istio-demo/nginx'],
    );
    const [group, , entry] = resources;
    assert.equal(group?.kind, 'WorkloadGroup');
    if (group?.kind !== 'WorkloadGroup') return;
    assert.deepEqual(group.spec.metadata.labels, { app: 'nginx' });
    assert.equal(group.spec.template.serviceAccount, 'vm');
    assert.equal(group.spec.template.network, '');
    assert.deepEqual(group.spec.probe?.httpGet, { path: '', port: 80, host: '', scheme: '', httpHeaders: [] });
    assert.equal(entry?.kind, 'ServiceEntry');
    if (entry?.kind !== 'ServiceEntry') return;
    assert.deepEqual(entry.spec.hosts, ['nginx.example.com']);
    assert.deepEqual(entry.spec.ports, [{ number: 80, name: 'http', protocol: 'HTTP', targetPort: 0 }]);
    assert.equal(entry.spec.location, 'MESH_INTERNAL');
    assert.equal(entry.spec.resolution, 'STATIC');
    assert.deepEqual(entry.spec.workloadSelector, { labels: { app: 'nginx' } });
    assert.deepEqual(entry.spec.addresses, []);
    assert.deepEqual(entry.spec.exportTo, []);
  });

  it('fills proto defaults: MESH_EXTERNAL, resolution NONE, the default namespace', () => {
    const [entry] = parseMeshYaml(serviceEntry('  hosts: [a.example.com]', '  name: svc'), { defaultNamespace: 'team' });
    assert.equal(entry?.kind, 'ServiceEntry');
    if (entry?.kind !== 'ServiceEntry') return;
    assert.equal(entry.metadata.namespace, 'team');
    assert.equal(entry.spec.location, 'MESH_EXTERNAL');
    assert.equal(entry.spec.resolution, 'NONE');
  });

  it('accepts v1beta1 and v1alpha3, empty documents, a v1 List, and skips Namespace and ServiceAccount', () => {
    const text = [
      '# comments only',
      '---',
      'apiVersion: v1\nkind: Namespace\nmetadata: {name: istio-demo}',
      '---',
      'apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: vm, namespace: istio-demo}',
      '---',
      serviceEntry('  hosts: [a.example.com]').replace('networking.istio.io/v1', 'networking.istio.io/v1beta1'),
      '---',
      'apiVersion: v1\nkind: List\nitems:\n- apiVersion: networking.istio.io/v1alpha3\n  kind: WorkloadGroup\n  metadata: {name: g, namespace: istio-demo}\n  spec:\n    template: {serviceAccount: vm}\n',
      '---',
    ].join('\n');
    const resources = parseMeshYaml(text);
    assert.deepEqual(
      resources.map((r) => [r.apiVersion, r.kind, r.metadata.name]),
      [
        ['networking.istio.io/v1beta1', 'ServiceEntry', 'svc'],
        ['networking.istio.io/v1alpha3', 'WorkloadGroup', 'g'],
      ],
    );
  });

  it('ignores server-set metadata and status, as kubectl apply does', () => {
    const text = serviceEntry(
      '  hosts: [a.example.com]\nstatus:\n  addresses:\n  - {host: a.example.com, value: 240.240.0.9}',
      '  name: svc\n  namespace: istio-demo\n  uid: 1234\n  resourceVersion: "7"\n  creationTimestamp: 2024-01-01T00:00:00Z',
    );
    const [entry] = parseMeshYaml(text);
    assert.equal(entry?.kind, 'ServiceEntry');
    if (entry?.kind === 'ServiceEntry') assert.deepEqual(entry.status.addresses, []);
  });

  it('names file, line, document, resource and field in each error, as in the brief', () => {
    const text = `${serviceEntry('  hosts: [a.example.com]', '  name: first\n  namespace: istio-demo')}---\n${serviceEntry('  hosts: []\n  resolution: STATIC', '  name: nginx\n  namespace: istio-demo')}`;
    assert.deepEqual(errorsOf(() => parseMeshYaml(text, { fileName: 'scenario.yaml' })), [
      'scenario.yaml:15: document 2 (ServiceEntry istio-demo/nginx): spec.hosts: must be a non-empty list',
    ]);
  });

  it('collects every error of every document before throwing', () => {
    const text = [
      serviceEntry('  hosts: [a.example.com]\n  ports:\n  - number: 80\n    protocol: FOO\n  resolutin: DNS'),
      '---',
      'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: vs}\nspec: {}',
      '---',
      'apiVersion: networking.istio.io/v1\nkind: WorkloadGroup\nmetadata:\n  name: g\n  labels: {version: 1.0}\nspec:\n  probe:\n    periodSeconds: -1\n    httpGet: {port: 80, scheme: http}',
    ].join('\n');
    assert.deepEqual(errorsOf(() => parseMeshYaml(text, { fileName: 'bad.yaml' })), [
      'bad.yaml:11: document 1 (ServiceEntry istio-demo/svc): spec.resolutin: unknown field (known fields: hosts, addresses, ports, location, resolution, endpoints, workloadSelector, exportTo, subjectAltNames)',
      'bad.yaml:9: document 1 (ServiceEntry istio-demo/svc): spec.ports[0].name: required',
      'bad.yaml:10: document 1 (ServiceEntry istio-demo/svc): spec.ports[0].protocol: unsupported protocol "FOO"',
      'bad.yaml:15: document 2: kind: "VirtualService" is not served by the local control plane (it serves ServiceEntry and WorkloadGroup, and ignores v1 Namespace and ServiceAccount)',
      'bad.yaml:23: document 3 (WorkloadGroup default/g): metadata.labels.version: expected a string, got a number (1); quote it',
      'bad.yaml:24: document 3 (WorkloadGroup default/g): spec.template: required',
      'bad.yaml:26: document 3 (WorkloadGroup default/g): spec.probe.periodSeconds: must be non-negative, got -1',
      'bad.yaml:27: document 3 (WorkloadGroup default/g): spec.probe.httpGet.scheme: must be "HTTP" or "HTTPS", got "http"',
    ]);
  });

  it('reports invalid YAML with its line', () => {
    const [message] = errorsOf(() => parseMeshYaml('kind: ServiceEntry\nspec:\n  hosts: [a\n', { fileName: 'x.yaml' }));
    assert.match(message ?? '', /^x\.yaml:\d+: invalid YAML: /);
  });

  it('applies istiod webhook rules to ServiceEntry fields', () => {
    const cases: [string, string][] = [
      ['  hosts: ["*"]', 'spec.hosts[0]: the full wildcard "*" is not allowed'],
      ['  hosts: a.example.com', 'spec.hosts: expected a list, got a string ("a.example.com")'],
      ['  ports: [{number: 80, name: http}]', 'spec.hosts: must be a non-empty list'],
      ['  hosts: [a.example.com]\n  ports: [{number: "80", name: http}]', 'spec.ports[0].number: expected an integer, got a string ("80")'],
      ['  hosts: [bad_host.com]', 'spec.hosts[0]: invalid host "bad_host.com": label "bad_host" is invalid'],
      ['  hosts: [a.example.123]', 'spec.hosts[0]: invalid host "a.example.123": top level domain "123" cannot be all-numeric'],
      ['  hosts: [a.example.com]\n  addresses: [10.0.0.300]', 'spec.addresses[0]: "10.0.0.300" is not a valid IP address'],
      ['  hosts: [a.example.com]\n  addresses: [10.0.0.0/8]\n  resolution: DNS', 'spec.addresses: CIDR addresses are allowed only for NONE/STATIC resolution types'],
      ['  hosts: ["*.example.com"]\n  resolution: DNS', 'spec.hosts[0]: hosts must be FQDN if no endpoints are provided for resolution mode DNS'],
      ['  hosts: [a.example.com]\n  resolution: DYNAMIC_DNS', 'spec.hosts[0]: host must be wildcarded for resolution mode DYNAMIC_DNS'],
      ['  hosts: [a.example.com]\n  resolution: dns', 'spec.resolution: expected one of NONE, STATIC, DNS, DNS_ROUND_ROBIN, DYNAMIC_DNS, got "dns"'],
      ['  hosts: [a.example.com]\n  ports: [{number: 70000, name: tcp}]', 'spec.ports[0].number: must be between 1 and 65535, got 70000'],
      ['  hosts: [a.example.com]\n  ports: [{number: 80, name: a}, {number: 80, name: b}]', 'spec.ports[1].number: port 80 already defined'],
      ['  hosts: [a.example.com, b.example.com]\n  resolution: STATIC\n  ports: [{number: 5432, name: pg, protocol: TCP}]', 'spec.ports[0]: multiple hosts provided with non-HTTP, non-TLS ports'],
      ['  hosts: [a.example.com]\n  exportTo: [istio-demo, "."]', 'spec.exportTo[1]: duplicate entries in exportTo: . and current namespace istio-demo'],
      ['  hosts: [a.example.com]\n  exportTo: [Other]', 'spec.exportTo[0]: expected ".", "*", "~" or a namespace name, got "Other"'],
      ['  hosts: [a.example.com]\n  resolution: STATIC\n  workloadSelector: {labels: {app: a}}\n  endpoints: [{address: 10.0.0.1}]', 'spec.workloadSelector: only one of workloadSelector or endpoints is allowed'],
      ['  hosts: [a.example.com]\n  resolution: STATIC\n  endpoints: [{address: vm.example.com}]', 'spec.endpoints[0].address: endpoint address "vm.example.com" is not a valid IP address'],
    ];
    for (const [spec, expected] of cases) {
      const messages = errorsOf(() => parseMeshYaml(serviceEntry(spec)));
      assert.ok(
        messages.some((message) => message.endsWith(`(ServiceEntry istio-demo/svc): ${expected}`)),
        `${JSON.stringify(spec)}: expected ${expected}, got ${messages.join(' | ')}`,
      );
    }
  });

  it('accepts what istiod accepts: wildcards, CIDRs with STATIC, DNS endpoints by name, exportTo ~', () => {
    const specs = [
      '  hosts: ["*.example.com"]\n  resolution: NONE',
      '  hosts: [a.example.com]\n  addresses: [10.1.0.0/16, 2001:db8::1]\n  resolution: STATIC\n  endpoints: [{address: 10.1.0.5, ports: {http: 8080}}]\n  ports: [{number: 80, name: http}]',
      '  hosts: [a.example.com]\n  resolution: DNS\n  endpoints: [{address: backend.example.com}]',
      '  hosts: ["*.example.com"]\n  resolution: DYNAMIC_DNS\n  ports: [{number: 443, name: tls, protocol: TLS}]',
      '  hosts: [a.example.com]\n  exportTo: ["~"]',
    ];
    for (const spec of specs) assert.equal(parseMeshYaml(serviceEntry(spec)).length, 1, spec);
  });

  it('applies istiod webhook rules to WorkloadGroup probes and labels', () => {
    const group = (spec: string): string =>
      `apiVersion: networking.istio.io/v1\nkind: WorkloadGroup\nmetadata: {name: g, namespace: istio-demo}\nspec:\n${spec.includes('template:') ? '' : '  template: {serviceAccount: vm}\n'}${spec}\n`;
    const cases: [string, string][] = [
      ['  probe: {periodSeconds: 5}', 'spec.probe: needs one of httpGet, tcpSocket or exec'],
      ['  probe: {httpGet: {port: 80}, tcpSocket: {port: 80}}', 'spec.probe: only one of httpGet, tcpSocket may be set'],
      ['  probe: {httpGet: {path: /}}', 'spec.probe.httpGet.port: required'],
      ['  probe: {exec: {command: []}}', 'spec.probe.exec.command: required'],
      ['  probe: {grpc: {port: 9000}}', "spec.probe.grpc: rejected by istiod's WorkloadGroup validation, which accepts only httpGet, tcpSocket and exec probes"],
      ['  probe: {httpGet: {port: 80, httpHeaders: [{name: "bad header", value: x}]}}', 'spec.probe.httpGet.httpHeaders[0].name: "bad header" is not a valid header name'],
      ['  metadata: {labels: {"-bad": x}}', 'spec.metadata.labels["-bad"]: invalid label key: name must be at most 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit'],
      ['  template: {ports: {http: 0}}', 'spec.template.ports.http: must be between 1 and 65535, got 0'],
    ];
    for (const [spec, expected] of cases) {
      const messages = errorsOf(() => parseMeshYaml(group(spec)));
      assert.ok(
        messages.some((message) => message.endsWith(`(WorkloadGroup istio-demo/g): ${expected}`)),
        `${JSON.stringify(spec)}: expected ${expected}, got ${messages.join(' | ')}`,
      );
    }
  });

  it('requires a lower-case name, a spec and a known apiVersion', () => {
    assert.deepEqual(
      errorsOf(() => parseMeshYaml('apiVersion: networking.istio.io/v2\nkind: ServiceEntry\nmetadata: {name: Bad_Name}\n', { fileName: 'f.yaml' })),
      [
        'f.yaml:1: document 1 (ServiceEntry default/Bad_Name): apiVersion: expected one of networking.istio.io/v1, networking.istio.io/v1beta1, networking.istio.io/v1alpha3, got "networking.istio.io/v2"',
        'f.yaml:3: document 1 (ServiceEntry default/Bad_Name): metadata.name: must be a lower-case DNS-1123 subdomain, got "Bad_Name"',
        'f.yaml:1: document 1 (ServiceEntry default/Bad_Name): spec: required',
      ],
    );
  });
});
