import assert from 'node:assert/strict';
import { Client, Metadata, credentials, status } from '@grpc/grpc-js';
import {
  CLUSTER_LOAD_ASSIGNMENT_TYPE_URL,
  CLUSTER_TYPE_URL,
  HTTP_CONNECTION_MANAGER_TYPE_URL,
  LISTENER_TYPE_URL,
  ProtoSchema,
  ROUTE_CONFIGURATION_TYPE_URL,
  ROUTER_TYPE_URL,
  fromStruct,
  toStruct,
  type DeltaDiscoveryRequest,
} from '../proto/index.js';
import { buildClusters, buildGrpcServiceResources, type GrpcService } from './grpc-service-resources.js';
import { LocalControlPlane } from './local-control-plane.js';
import {
  ResourceSchema,
} from './resource-schema.js';
import { Cleanups, authMetadata, connect, createCertificate, expectStatus, generateCsr, openDelta } from './test-support.js';

const HOST = 'echo.istio-demo.svc.cluster.local';
const CLUSTER = `outbound|7070||${HOST}`;
const SERVICES: GrpcService[] = [
  {
    host: HOST,
    port: 7070,
    endpoints: [
      { address: '10.0.0.1', port: 17070 },
      { address: '10.0.0.2', port: 17070 },
    ],
  },
  { host: 'other.istio-demo.svc.cluster.local', port: 8080, endpoints: [] },
];

describe('gRPC service resources', function () {
  this.timeout(30_000);
  const resources = new ResourceSchema();
  const schema = new ProtoSchema();
  const cleanups = new Cleanups();
  afterEach(() => cleanups.runAll());

  function build(services: readonly GrpcService[] = SERVICES) {
    const built = buildGrpcServiceResources(services, resources);
    const of = (typeUrl: string) => built.get(typeUrl) ?? assert.fail(`no ${typeUrl}`);
    return { built, of };
  }

  it('builds the four types in the order istiod pushes them: clusters, endpoints, listeners, routes', () => {
    const { built } = build();
    assert.deepEqual([...built.keys()], [CLUSTER_TYPE_URL, CLUSTER_LOAD_ASSIGNMENT_TYPE_URL, LISTENER_TYPE_URL, ROUTE_CONFIGURATION_TYPE_URL]);
    assert.deepEqual(
      [...built.values()].map((ofType) => ofType.map((resource) => resource.name)),
      [
        [CLUSTER, 'outbound|8080||other.istio-demo.svc.cluster.local'],
        [CLUSTER, 'outbound|8080||other.istio-demo.svc.cluster.local'],
        [`${HOST}:7070`, 'other.istio-demo.svc.cluster.local:8080'],
        [`${HOST}:7070`, 'other.istio-demo.svc.cluster.local:8080'],
      ],
    );
  });

  it('builds an API listener whose connection manager fetches its route over ADS and ends with the router', () => {
    const listener = resources.listener.decode(build().of(LISTENER_TYPE_URL)[0]?.value ?? Buffer.alloc(0));
    assert.equal(listener.name, `${HOST}:7070`);
    const any = listener.api_listener?.api_listener;
    assert.equal(any?.type_url, HTTP_CONNECTION_MANAGER_TYPE_URL);
    const manager = resources.httpConnectionManager.decode(any.value);
    assert.equal(manager.rds?.route_config_name, `${HOST}:7070`);
    assert.deepEqual(manager.rds.config_source?.ads, {});
    assert.equal(manager.rds.config_source.resource_api_version, 'V3');
    assert.equal(manager.http_filters.length, 1);
    const router = manager.http_filters.at(-1);
    assert.equal(router?.name, 'envoy.filters.http.router');
    assert.equal(router.typed_config?.type_url, ROUTER_TYPE_URL);
    assert.equal(router.typed_config.value.length, 0, 'a default Router');
    assert.equal(resources.router.decode(router.typed_config.value).suppress_envoy_headers, false);
  });

  it('routes every path on the host, with or without the port, to the outbound cluster', () => {
    const route = resources.routeConfiguration.decode(build().of(ROUTE_CONFIGURATION_TYPE_URL)[0]?.value ?? Buffer.alloc(0));
    assert.equal(route.name, `${HOST}:7070`);
    assert.equal(route.virtual_hosts.length, 1);
    const [virtualHost] = route.virtual_hosts;
    assert.deepEqual(virtualHost?.domains, [HOST, `${HOST}:7070`]);
    assert.equal(virtualHost.routes.length, 1);
    assert.equal(virtualHost.routes[0]?.match?.prefix, '/');
    assert.equal(virtualHost.routes[0].route?.cluster, CLUSTER);
  });

  it('builds a round-robin EDS cluster whose endpoints come over ADS', () => {
    const cluster = resources.cluster.decode(build().of(CLUSTER_TYPE_URL)[0]?.value ?? Buffer.alloc(0));
    assert.equal(cluster.name, CLUSTER);
    assert.equal(cluster.type, 'EDS');
    assert.equal(cluster.lb_policy, 'ROUND_ROBIN');
    assert.equal(cluster.eds_cluster_config?.service_name, CLUSTER);
    assert.deepEqual(cluster.eds_cluster_config.eds_config?.ads, {});
    assert.equal(cluster.eds_cluster_config.eds_config.resource_api_version, 'V3');
  });

  it('puts every endpoint in one weighted locality, and none for a service without endpoints', () => {
    const { of } = build();
    const [echo, other] = of(CLUSTER_LOAD_ASSIGNMENT_TYPE_URL).map((resource) => resources.clusterLoadAssignment.decode(resource.value));
    assert.equal(echo?.cluster_name, CLUSTER);
    assert.equal(echo.endpoints.length, 1);
    const [locality] = echo.endpoints;
    assert.ok(locality?.locality, 'gRPC clients reject a locality that is unset');
    assert.equal(locality.load_balancing_weight?.value, 2, 'gRPC clients skip a locality without weight');
    assert.deepEqual(
      locality.lb_endpoints.map((lb) => [lb.endpoint?.address?.socket_address?.address, lb.endpoint?.address?.socket_address?.port_value, lb.health_status]),
      [
        ['10.0.0.1', 17070, 'HEALTHY'],
        ['10.0.0.2', 17070, 'HEALTHY'],
      ],
    );
    assert.deepEqual(other?.endpoints, []);
  });

  it('refuses input a gRPC client would NACK', () => {
    const echo = (endpoints: GrpcService['endpoints'], port = 7070): GrpcService[] => [{ host: HOST, port, endpoints }];
    assert.throws(() => build(echo([{ address: 'echo-0.local', port: 1 }])), /not an IP address/);
    assert.throws(() => build(echo([{ address: '10.0.0.1', port: 0 }])), /port 0 is not in 1\.\.65535/);
    assert.throws(() => build(echo([], 70_000)), /port 70000/);
    assert.throws(() => build(echo([{ address: '10.0.0.1', port: 1 }, { address: '10.0.0.1', port: 1 }])), /listed twice/);
    assert.throws(() => build([...echo([]), ...echo([])]), /echo\.istio-demo\.svc\.cluster\.local:7070 is listed twice/);
    assert.throws(() => build([{ host: 'bad host', port: 1, endpoints: [] }]), /not a DNS name/);
  });

  it('builds N distinct real clusters of about the asked size', () => {
    const clusters = buildClusters(1200, 1000, resources);
    assert.equal(clusters.length, 1200);
    assert.equal(new Set(clusters.map((cluster) => cluster.name)).size, 1200);
    for (const cluster of clusters) assert.ok(Math.abs(cluster.value.length - 1000) <= 2, `${cluster.name}: ${cluster.value.length} bytes`);
    const last = resources.cluster.decode(clusters[1199]?.value ?? Buffer.alloc(0));
    assert.equal(last.name, 'outbound|8080||svc-1199.bench.svc.cluster.local');
    assert.equal(last.type, 'EDS');
    assert.equal(fromStruct(last.metadata?.filter_metadata.istio).default_original_port, 8080);
    // Below the unpadded size, each cluster is just as small as it can be.
    assert.ok(buildClusters(3, 10, resources).every((cluster) => cluster.value.length < 300));
  });

  it('pushes the services to a Delta stream of a TLS control plane, and withdraws them', async () => {
    const cp = new LocalControlPlane({ schema, resourceSchema: resources });
    cleanups.add(() => cp.close());
    await cp.start();
    const client = connect(cleanups, cp.port, cp.rootCertPem);
    const token = await cp.issueToken({ namespace: 'istio-demo', serviceAccount: 'vm' });
    const { stream, reader } = openDelta(cleanups, client, schema, authMetadata({ token, clusterId: 'Kubernetes' }));
    const request: DeltaDiscoveryRequest = {
      node: { id: 'sidecar~10.0.0.9~vm.istio-demo~istio-demo.svc.cluster.local', cluster: 'vm.istio-demo', metadata: toStruct({}) },
      type_url: LISTENER_TYPE_URL,
      resource_names_subscribe: [],
      resource_names_unsubscribe: [],
      initial_resource_versions: {},
      response_nonce: '',
      error_detail: null,
    };
    stream.write(request);
    await cp.waitForRequest((r) => r.typeUrl === LISTENER_TYPE_URL);
    cp.setGrpcServices(SERVICES);
    const pushed = await reader.next();
    assert.equal(pushed.type_url, LISTENER_TYPE_URL);
    assert.deepEqual(
      pushed.resources.map((resource) => [resource.name, resources.listener.decode(resource.resource?.value ?? Buffer.alloc(0)).name]),
      [
        [`${HOST}:7070`, `${HOST}:7070`],
        ['other.istio-demo.svc.cluster.local:8080', 'other.istio-demo.svc.cluster.local:8080'],
      ],
    );
    stream.write({ ...request, node: null, response_nonce: pushed.nonce });
    await cp.waitForAck(LISTENER_TYPE_URL);
    cp.setGrpcServices([]);
    const withdrawn = await reader.next();
    assert.deepEqual(withdrawn.removed_resources.sort(), [`${HOST}:7070`, 'other.istio-demo.svc.cluster.local:8080']);
    assert.deepEqual(cp.getResources(CLUSTER_TYPE_URL), []);
  });

  it('serves ADS in plaintext to anyone in insecure mode, without a CA', async () => {
    const cp = new LocalControlPlane({ schema, insecure: true });
    cleanups.add(() => cp.close());
    await cp.start();
    assert.equal(cp.isInsecure, true);
    assert.throws(() => cp.rootCertPem, /insecure .* no CA/);
    const client = new Client(`127.0.0.1:${cp.port}`, credentials.createInsecure());
    cleanups.add(() => client.close());
    const { csrPem } = await generateCsr('P-256');
    const err = await expectStatus(createCertificate(client, schema, { csr: csrPem, validity_duration: 60, metadata: null }, new Metadata()));
    assert.equal(err.code, status.UNIMPLEMENTED);

    const { stream, reader } = openDelta(cleanups, client, schema, new Metadata());
    stream.write({
      node: { id: 'proxyless', cluster: '', metadata: null },
      type_url: CLUSTER_TYPE_URL,
      resource_names_subscribe: [CLUSTER],
      resource_names_unsubscribe: [],
      initial_resource_versions: {},
      response_nonce: '',
      error_detail: null,
    });
    cp.setGrpcServices(SERVICES);
    const pushed = await reader.next();
    assert.deepEqual(
      pushed.resources.map((resource) => resource.name),
      [CLUSTER],
      'only the subscribed cluster',
    );
    const [node] = cp.connectedNodes;
    assert.deepEqual([node?.id, node?.authMethod, node?.peerIdentity], ['proxyless', 'none', '']);
  });
});
