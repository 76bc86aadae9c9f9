import type { JsonLike, NameInfo, NameTable } from '../proto/index.js';
import type { KubernetesService } from './mesh-config-store.js';
import { shouldAutoAllocate, type ServiceEntry } from './mesh-resources.js';
import { formatIp, parseIp, parsePrefix, type IpFamily } from './prefix-allocator.js';

/** What of a proxy decides its NameTable. */
export interface NameTableProxy {
  /** The proxy's config namespace (node metadata NAMESPACE). */
  readonly namespace: string;
  /** Node metadata DNS_CAPTURE: only such proxies get auto-allocated addresses. */
  readonly dnsCapture: boolean;
  /**
   * Node metadata DNS_AUTO_ALLOCATE. It only matters where istiod runs with
   * `PILOT_ENABLE_IP_AUTOALLOCATE=false`; with Istio's default (true), the only mode modelled here,
   * DNS_CAPTURE alone decides, so this changes nothing.
   */
  readonly dnsAutoAllocate?: boolean;
  /** Families of the proxy's INSTANCE_IPS; both = dual stack. [] is taken as IPv4, as istiod does. */
  readonly ipFamilies: readonly IpFamily[];
}

/** Where the services come from: a `MeshConfigStore`, or any object with the same two lists. */
export interface NameTableSource {
  /** In creation order. */
  readonly serviceEntries: readonly ServiceEntry[];
  readonly kubernetesServices: readonly KubernetesService[];
}

const CLUSTER_SET_SUFFIX = '.clusterset.local';
const UNSPECIFIED_IP = '0.0.0.0';

/** A service as istiod's registries model it: one per Kubernetes Service, one per ServiceEntry host and address. */
interface RegistryService {
  readonly hostname: string;
  readonly namespace: string;
  readonly isKubernetes: boolean;
  /** Kubernetes Service name (the NameTable shortname). */
  readonly name: string;
  readonly exportTo: readonly string[];
  /** A ServiceEntry address (IP or CIDR), the first cluster IP, or `0.0.0.0`. */
  readonly defaultAddress: string;
  readonly clusterVips: readonly string[];
  readonly autoV4: string;
  readonly autoV6: string;
}

function kubernetesServices(source: NameTableSource): RegistryService[] {
  return source.kubernetesServices.map((service) => ({
    hostname: service.host,
    namespace: service.namespace,
    isKubernetes: true,
    name: service.name ?? service.host.split('.')[0] ?? service.host,
    exportTo: service.exportTo ?? [],
    defaultAddress: service.vips[0] ?? UNSPECIFIED_IP,
    clusterVips: service.vips,
    autoV4: '',
    autoV6: '',
  }));
}

/** Istio's ServiceEntry conversion: a service per host and spec address, or one without an address. */
function serviceEntryServices(entry: ServiceEntry): RegistryService[] {
  const out: RegistryService[] = [];
  const base = { namespace: entry.metadata.namespace, isKubernetes: false, exportTo: entry.spec.exportTo, clusterVips: [] };
  const isAllocated = shouldAutoAllocate(entry);
  // Within one entry istiod orders services by name (its creation times tie); hostname is the name.
  const hosts = [...entry.spec.hosts].sort();
  for (const host of hosts) {
    const service = { ...base, hostname: host, name: host };
    if (entry.spec.addresses.length > 0) {
      for (const address of entry.spec.addresses) {
        let defaultAddress: string | undefined;
        if (parseIp(address)) defaultAddress = address;
        else {
          const prefix = parsePrefix(address);
          // A host-sized prefix is an address; any other CIDR stays as it is (and gets no DNS entry).
          if (prefix) defaultAddress = prefix.bits === (prefix.address.family === 'v4' ? 32 : 128) ? formatIp(prefix.address) : address;
        }
        if (defaultAddress !== undefined) out.push({ ...service, defaultAddress, autoV4: '', autoV6: '' });
      }
      continue;
    }
    let autoV4 = '';
    let autoV6 = '';
    if (isAllocated) {
      for (const address of entry.status.addresses) {
        if (address.host !== host) continue;
        const ip = parseIp(address.value);
        if (ip?.family === 'v4') autoV4 = address.value;
        if (ip?.family === 'v6') autoV6 = address.value;
      }
    }
    out.push({ ...service, defaultAddress: UNSPECIFIED_IP, autoV4, autoV6 });
  }
  return out;
}

/**
 * Istio's `PushContext` service index and default Sidecar scope (egress `*\/*`): the services
 * visible to `namespace` — those exported to it (`.` in their own namespace, or naming it) first,
 * then public ones, each in creation order — keeping, for a hostname defined in several namespaces,
 * only the proxy's own namespace, else the first seen, with a Kubernetes Service preferred over a
 * ServiceEntry.
 */
function servicesInScope(services: readonly RegistryService[], namespace: string): RegistryService[] {
  const exported: RegistryService[] = [];
  const visibleToAll: RegistryService[] = [];
  for (const service of services) {
    const exportTo = service.exportTo.length > 0 ? service.exportTo : ['*'];
    if (exportTo.includes('*')) visibleToAll.push(service);
    else if (exportTo.includes('~')) continue;
    else if (exportTo.some((entry) => (entry === '.' ? service.namespace : entry) === namespace)) exported.push(service);
  }
  const imported = [...exported, ...visibleToAll];
  const chosen = new Map<string, { namespace: string; isKubernetes: boolean }>();
  for (const service of imported) {
    const current = chosen.get(service.hostname);
    const candidate = { namespace: service.namespace, isKubernetes: service.isKubernetes };
    if (
      !current ||
      service.namespace === namespace ||
      (!current.isKubernetes && service.isKubernetes && (service.namespace === namespace || current.namespace !== namespace))
    ) {
      chosen.set(service.hostname, candidate);
    }
  }
  return imported.filter((service) => chosen.get(service.hostname)?.namespace === service.namespace);
}

/**
 * Istio's `FilterAddressesByIPFamily` with dual stack off (`ISTIO_DUAL_STACK=false`, the default):
 * a single-family proxy gets its family; a dual-stack one gets the family of the first address.
 */
function filterByFamily(addresses: readonly string[], families: ReadonlySet<IpFamily>): string[] {
  const byFamily = (family: IpFamily): string[] =>
    addresses.filter((address) => (parseIp(address) ?? parsePrefix(address)?.address)?.family === family);
  const v4 = families.has('v4') ? byFamily('v4') : [];
  const v6 = families.has('v6') ? byFamily('v6') : [];
  if (families.has('v4') && families.has('v6') && addresses.length > 0) {
    const first = parseIp(addresses[0] ?? '') ?? parsePrefix(addresses[0] ?? '')?.address;
    if (first?.family === 'v4') return v4;
    if (first?.family === 'v6') return v6;
  }
  return v4.length > 0 ? v4 : v6;
}

/** Istio's `Service.GetAllAddressesForProxy` for a proxy in the services' own cluster. */
function addressesForProxy(service: RegistryService, proxy: NameTableProxy, families: ReadonlySet<IpFamily>): string[] {
  let addresses: string[] = [...service.clusterVips];
  if (addresses.length === 0 && proxy.dnsCapture) {
    addresses = [service.autoV4, service.autoV6].filter((address) => address !== '');
  }
  addresses = filterByFamily(addresses, families);
  if (addresses.length > 0) return addresses;
  if (service.defaultAddress === '') return [];
  // Kubernetes cluster IPs are filtered by family; ServiceEntry addresses are not.
  return service.clusterVips.length > 0 ? filterByFamily([service.defaultAddress], families) : [service.defaultAddress];
}

/**
 * The NameTable istiod's NDS generator (`pkg/dns/server/name_table.go`) builds for `proxy`:
 *
 * - every service in the proxy's scope whose addresses for the proxy are IPs — ServiceEntry
 *   `spec.addresses` (CIDRs other than /32 and /128 are left out), Kubernetes cluster IPs, and the
 *   addresses auto-allocated to a ServiceEntry host, which only DNS_CAPTURE proxies get;
 * - a host without any (an entry with resolution NONE and no addresses, a wildcard host without
 *   addresses, a headless service, or any auto-allocated host for a proxy without DNS capture) is
 *   left out — istiod's endpoint expansion of headless services is not modelled;
 * - ServiceEntry hosts have registry `External`; wildcard hosts appear as written (`*.example.com`);
 * - Kubernetes hosts have registry `Kubernetes`, shortname and namespace (except `.clusterset.local`
 *   hosts), and win over a ServiceEntry for the same host; several ServiceEntry services of one
 *   host merge their IPs.
 */
export function buildNameTable(source: NameTableSource, proxy: NameTableProxy): NameTable {
  const families = new Set<IpFamily>(proxy.ipFamilies.length > 0 ? proxy.ipFamilies : ['v4']);
  const services = [...kubernetesServices(source), ...source.serviceEntries.flatMap(serviceEntryServices)];
  const table: Record<string, NameInfo> = {};
  for (const service of servicesInScope(services, proxy.namespace)) {
    const ips: string[] = [];
    let isHeadless = false;
    for (const address of addressesForProxy(service, proxy, families)) {
      if (address === UNSPECIFIED_IP) {
        isHeadless = true;
        break;
      }
      if (parseIp(address)) ips.push(address);
    }
    if (isHeadless || ips.length === 0) continue;
    const hasShortname = service.isKubernetes && !service.hostname.endsWith(CLUSTER_SET_SUFFIX);
    const existing = table[service.hostname];
    if (!existing) {
      table[service.hostname] = {
        ips,
        registry: service.isKubernetes ? 'Kubernetes' : 'External',
        shortname: hasShortname ? service.name : '',
        namespace: hasShortname ? service.namespace : '',
        alt_hosts: [],
      };
    } else if (existing.registry !== 'Kubernetes') {
      if (service.isKubernetes) {
        table[service.hostname] = {
          ips,
          registry: 'Kubernetes',
          shortname: hasShortname ? service.name : existing.shortname,
          namespace: hasShortname ? service.namespace : existing.namespace,
          alt_hosts: [],
        };
      } else {
        existing.ips.push(...ips);
      }
    }
  }
  return { table };
}

/** Go's `strconv.ParseBool`, as istiod reads boolean node metadata; anything else is false. */
function metadataBool(value: JsonLike | undefined): boolean {
  if (typeof value === 'boolean') return value;
  return typeof value === 'string' && ['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value);
}

/**
 * The NameTable-relevant view of an ADS node, as istiod derives it: namespace from metadata
 * NAMESPACE (else the first label of the node ID's DNS domain), IPs from INSTANCE_IPS (a
 * comma-separated list; else the node ID's IP), DNS_CAPTURE and DNS_AUTO_ALLOCATE as Go booleans.
 */
export function nameTableProxyFromNode(node: { readonly id: string; readonly metadata: Readonly<Record<string, JsonLike>> }): NameTableProxy {
  const parts = node.id.split('~');
  const namespaceValue = node.metadata['NAMESPACE'];
  const namespace = typeof namespaceValue === 'string' && namespaceValue !== '' ? namespaceValue : (parts[3]?.split('.')[0] ?? '');
  const instanceIps = node.metadata['INSTANCE_IPS'];
  let ips = typeof instanceIps === 'string' && instanceIps !== '' ? instanceIps.split(',') : [];
  if (ips.length === 0 || !ips.every((ip) => parseIp(ip))) ips = parts[1] !== undefined && parseIp(parts[1]) ? [parts[1]] : [];
  const families = new Set(ips.map((ip) => parseIp(ip)?.family).filter((family): family is IpFamily => family !== undefined));
  return {
    namespace,
    dnsCapture: metadataBool(node.metadata['DNS_CAPTURE']),
    dnsAutoAllocate: metadataBool(node.metadata['DNS_AUTO_ALLOCATE']),
    ipFamilies: (['v4', 'v6'] as const).filter((family) => families.has(family)),
  };
}
