import {
  isAllocatableHost,
  shouldAutoAllocate,
  type MeshResource,
  type MeshResourceKind,
  type ServiceEntry,
  type ServiceEntryAddress,
  type WorkloadGroup,
} from './mesh-resources.js';
import { parseMeshYaml, type ParseMeshYamlOptions } from './mesh-yaml.js';
import { PrefixAllocator, formatIp, parseIp, sameIp, type IpValue } from './prefix-allocator.js';
import { deepFreeze } from '../deep-freeze.js';
import { resourceKey } from './mesh-resources.js';

/** istiod's `PILOT_IP_AUTOALLOCATE_IPV4_PREFIX` default. */
export const DEFAULT_IPV4_AUTOALLOCATE_PREFIX = '240.240.0.0/16';
/** istiod's `PILOT_IP_AUTOALLOCATE_IPV6_PREFIX` default (RFC 5180 benchmarking range). */
export const DEFAULT_IPV6_AUTOALLOCATE_PREFIX = '2001:2::/48';

/**
 * A Kubernetes Service as istiod's Kubernetes registry would see it. The local control plane has no
 * cluster; tests declare these so that NameTables carry `Kubernetes` entries (with shortname and
 * namespace) and the agent's Kubernetes name expansion can be exercised end to end.
 */
export interface KubernetesService {
  /** `<name>.<namespace>.svc.<cluster domain>`, e.g. `reviews.bookinfo.svc.cluster.local`. */
  readonly host: string;
  readonly namespace: string;
  /** Cluster IPs (one per IP family). [] = headless, which gets no entry here (endpoints are not modelled). */
  readonly vips: readonly string[];
  /** The Service's name; default the host's first label. */
  readonly name?: string;
  /** The `networking.istio.io/exportTo` annotation; default all namespaces. */
  readonly exportTo?: readonly string[];
}

/** Which kinds an operation changed; nothing is reported for a resource applied unchanged. */
export interface MeshConfigChange {
  readonly serviceEntries: boolean;
  readonly workloadGroups: boolean;
  readonly kubernetesServices: boolean;
}

export interface MeshConfigStoreOptions {
  /** `PILOT_IP_AUTOALLOCATE_IPV4_PREFIX`; default `240.240.0.0/16`. */
  readonly ipv4Prefix?: string;
  /** `PILOT_IP_AUTOALLOCATE_IPV6_PREFIX`; default `2001:2::/48`. */
  readonly ipv6Prefix?: string;
  /** Called after every operation that changed something. */
  readonly onChange?: (change: MeshConfigChange) => void;
}

/** A unit of allocation work, processed in order as istiod's controller queue does. */
type AllocationTask = { readonly kind: 'entry'; readonly key: string } | { readonly kind: 'conflict'; readonly addresses: readonly IpValue[] };

const NO_CHANGE: MeshConfigChange = { serviceEntries: false, workloadGroups: false, kubernetesServices: false };



/** What `kubectl apply` compares: the object minus its status and apiVersion. */
function sameContent(a: MeshResource, b: MeshResource): boolean {
  return JSON.stringify([a.metadata, a.spec]) === JSON.stringify([b.metadata, b.spec]);
}

const DNS1123_LABEL = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?$/;

function checkKubernetesService(service: KubernetesService, index: number): void {
  const at = `setKubernetesServices: services[${index}]`;
  const labels = service.host.replace(/\.$/, '').split('.');
  if (service.host === '' || labels.some((label) => !/^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$/.test(label))) {
    throw new TypeError(`${at}.host: ${JSON.stringify(service.host)} is not a valid host name`);
  }
  if (!DNS1123_LABEL.test(service.namespace)) throw new TypeError(`${at}.namespace: ${JSON.stringify(service.namespace)} is not a namespace name`);
  service.vips.forEach((vip, vipIndex) => {
    if (!parseIp(vip)) throw new TypeError(`${at}.vips[${vipIndex}]: ${JSON.stringify(vip)} is not an IP address`);
  });
  for (const entry of service.exportTo ?? []) {
    if (entry !== '*' && entry !== '.' && entry !== '~' && !DNS1123_LABEL.test(entry)) {
      throw new TypeError(`${at}.exportTo: ${JSON.stringify(entry)} is not ".", "*", "~" or a namespace name`);
    }
  }
}

/**
 * The mesh configuration of the local control plane, with `kubectl apply` semantics: applying a
 * resource creates it or replaces its spec, keeping its status; resources are kept in creation
 * order (istiod orders services by creation time).
 *
 * It also plays istiod's ServiceEntry IP auto-allocation controller (`pilot/pkg/controllers/ipallocate`,
 * on by default since Istio 1.25 with `PILOT_ENABLE_IP_AUTOALLOCATE`): every ServiceEntry that has
 * no `spec.addresses`, a resolution other than NONE and no opt-out label gets one IPv4 and one IPv6
 * address per host (wildcard hosts only with DYNAMIC_DNS), handed out sequentially from
 * 240.240.0.0/16 and 2001:2::/48 in the order entries are applied — the first is `240.240.0.1` and
 * `2001:2::1` — and recorded in `status.addresses`. An entry keeps its addresses while its hosts stay;
 * a user address in the range that another entry already holds makes that entry be reassigned.
 * As in istiod, addresses of deleted entries or removed hosts are not reused.
 */
export class MeshConfigStore {
  readonly #serviceEntries = new Map<string, ServiceEntry>();
  readonly #workloadGroups = new Map<string, WorkloadGroup>();
  #kubernetesServices: readonly KubernetesService[] = [];
  readonly #v4: PrefixAllocator;
  readonly #v6: PrefixAllocator;
  readonly #onChange: ((change: MeshConfigChange) => void) | undefined;

  constructor(options: MeshConfigStoreOptions = {}) {
    this.#v4 = new PrefixAllocator(options.ipv4Prefix ?? DEFAULT_IPV4_AUTOALLOCATE_PREFIX);
    this.#v6 = new PrefixAllocator(options.ipv6Prefix ?? DEFAULT_IPV6_AUTOALLOCATE_PREFIX);
    if (this.#v4.prefix.address.family !== 'v4') throw new TypeError(`ipv4Prefix: ${options.ipv4Prefix} is not an IPv4 prefix`);
    if (this.#v6.prefix.address.family !== 'v6') throw new TypeError(`ipv6Prefix: ${options.ipv6Prefix} is not an IPv6 prefix`);
    this.#onChange = options.onChange;
  }

  /** ServiceEntries in creation order, with the addresses allocated to them in `status`. */
  get serviceEntries(): readonly ServiceEntry[] {
    return [...this.#serviceEntries.values()];
  }

  /** WorkloadGroups in creation order. */
  get workloadGroups(): readonly WorkloadGroup[] {
    return [...this.#workloadGroups.values()];
  }

  get kubernetesServices(): readonly KubernetesService[] {
    return this.#kubernetesServices;
  }

  serviceEntry(namespace: string, name: string): ServiceEntry | undefined {
    return this.#serviceEntries.get(resourceKey(namespace, name));
  }

  workloadGroup(namespace: string, name: string): WorkloadGroup | undefined {
    return this.#workloadGroups.get(resourceKey(namespace, name));
  }

  /**
   * The addresses allocated to `host` (IPv4 first, then IPv6), from the oldest ServiceEntry (in
   * `namespace`, if given) that has any for it; [] if none.
   */
  allocatedAddresses(host: string, namespace?: string): string[] {
    for (const entry of this.#serviceEntries.values()) {
      if (namespace !== undefined && entry.metadata.namespace !== namespace) continue;
      const values = entry.status.addresses.filter((address) => address.host === host).map((address) => address.value);
      if (values.length > 0) return values;
    }
    return [];
  }

  /** Parses (see `parseMeshYaml`, which throws `ConfigErrors`) and applies every document; all or nothing. */
  applyYaml(text: string, options: ParseMeshYamlOptions = {}): MeshConfigChange {
    return this.apply(parseMeshYaml(text, options));
  }

  /** Deletes the resources the documents name (as `kubectl delete -f`); ones that do not exist are skipped. */
  deleteYaml(text: string, options: ParseMeshYamlOptions = {}): MeshConfigChange {
    const resources = parseMeshYaml(text, options);
    return this.#commit(this.#deleteAll(resources.map((r) => ({ kind: r.kind, namespace: r.metadata.namespace, name: r.metadata.name }))));
  }

  apply(resources: readonly MeshResource[]): MeshConfigChange {
    let hasEntries = false;
    let hasGroups = false;
    const tasks: AllocationTask[] = [];
    for (const resource of resources) {
      const key = resourceKey(resource.metadata.namespace, resource.metadata.name);
      if (resource.kind === 'ServiceEntry') {
        const existing = this.#serviceEntries.get(key);
        if (existing && sameContent(existing, resource)) continue;
        // Status belongs to the server: an applied one is dropped, a stored one is kept.
        this.#serviceEntries.set(key, deepFreeze({ ...structuredClone(resource), status: existing?.status ?? { addresses: [] } }));
        tasks.push({ kind: 'entry', key });
        hasEntries = true;
      } else {
        const existing = this.#workloadGroups.get(key);
        if (existing && sameContent(existing, resource)) continue;
        this.#workloadGroups.set(key, deepFreeze(structuredClone(resource)));
        hasGroups = true;
      }
    }
    this.#allocate(tasks);
    return this.#commit({ serviceEntries: hasEntries, workloadGroups: hasGroups, kubernetesServices: false });
  }

  delete(kind: MeshResourceKind, namespace: string, name: string): MeshConfigChange {
    return this.#commit(this.#deleteAll([{ kind, namespace, name }]));
  }

  /** Replaces the declared Kubernetes services. Throws a TypeError naming the first malformed field. */
  setKubernetesServices(services: readonly KubernetesService[]): MeshConfigChange {
    services.forEach(checkKubernetesService);
    const next = deepFreeze(structuredClone([...services]));
    if (JSON.stringify(next) === JSON.stringify(this.#kubernetesServices)) return NO_CHANGE;
    this.#kubernetesServices = next;
    return this.#commit({ ...NO_CHANGE, kubernetesServices: true });
  }

  #deleteAll(targets: readonly { kind: MeshResourceKind; namespace: string; name: string }[]): MeshConfigChange {
    let hasEntries = false;
    let hasGroups = false;
    for (const target of targets) {
      const key = resourceKey(target.namespace, target.name);
      // istiod's allocator does not free a deleted entry's addresses (its TODO): they stay taken.
      if (target.kind === 'ServiceEntry') hasEntries = this.#serviceEntries.delete(key) || hasEntries;
      else hasGroups = this.#workloadGroups.delete(key) || hasGroups;
    }
    return { serviceEntries: hasEntries, workloadGroups: hasGroups, kubernetesServices: false };
  }

  #commit(change: MeshConfigChange): MeshConfigChange {
    if (change.serviceEntries || change.workloadGroups || change.kubernetesServices) this.#onChange?.(change);
    return change;
  }

  // ---- the allocation controller ----

  #allocate(initial: readonly AllocationTask[]): void {
    const queue = [...initial];
    for (let task = queue.shift(); task; task = queue.shift()) {
      if (task.kind === 'entry') this.#reconcile(task.key, queue);
      else this.#resolveConflict(task.addresses);
    }
  }

  #reconcile(key: string, queue: AllocationTask[]): void {
    const entry = this.#serviceEntries.get(key);
    if (!entry) return;
    if (!shouldAutoAllocate(entry)) {
      // User addresses inside the range are taken, so that no entry is allocated one of them.
      this.#markUsed(this.#specAddresses(entry), key, queue);
      if (entry.status.addresses.length > 0) {
        for (const ip of this.#statusAddresses(entry)) this.#allocatorFor(ip).free(ip, key);
        this.#setStatus(key, []);
      }
      return;
    }
    const existing = this.#hostAddresses(entry);
    this.#markUsed([...existing.values()].flat(), key, queue);
    const hosts = [...new Set(entry.spec.hosts.filter((host) => isAllocatableHost(entry, host)))];
    if (hosts.length === existing.size && hosts.every((host) => existing.has(host))) return;
    this.#setStatus(key, this.#assign(entry, hosts, existing));
  }

  /** Addresses for `hosts`: kept from `existing` where present, else the next v4 and v6 ones. */
  #assign(entry: ServiceEntry, hosts: readonly string[], existing: ReadonlyMap<string, readonly IpValue[]>): ServiceEntryAddress[] {
    const owner = resourceKey(entry.metadata.namespace, entry.metadata.name);
    const out: ServiceEntryAddress[] = [];
    for (const host of hosts) {
      const ips = existing.get(host) ?? [this.#v4, this.#v6].flatMap((allocator) => this.#next(allocator, owner));
      for (const ip of ips) out.push({ host, value: formatIp(ip) });
    }
    return out;
  }

  /**
   * An address claimed twice: entries holding it by auto-allocation are reassigned all their hosts'
   * addresses — every one of them when a user specified the address, else all but the oldest.
   */
  #resolveConflict(addresses: readonly IpValue[]): void {
    const holders: string[] = [];
    let hasUserClaim = false;
    for (const [key, entry] of this.#serviceEntries) {
      if (this.#specAddresses(entry).some((ip) => addresses.some((a) => sameIp(a, ip)))) hasUserClaim = true;
      if (this.#statusAddresses(entry).some((ip) => addresses.some((a) => sameIp(a, ip)))) holders.push(key);
    }
    for (const key of holders.slice(hasUserClaim ? 0 : 1)) {
      const entry = this.#serviceEntries.get(key);
      if (!entry) continue;
      const hosts = [...new Set(entry.spec.hosts.filter((host) => isAllocatableHost(entry, host)))];
      this.#setStatus(key, this.#assign(entry, hosts, new Map()));
    }
  }

  /** As istiod, an exhausted range leaves the host without an address of that family rather than failing. */
  #next(allocator: PrefixAllocator, owner: string): IpValue[] {
    try {
      return [allocator.allocate(owner)];
    } catch {
      return [];
    }
  }

  #markUsed(ips: readonly IpValue[], owner: string, queue: AllocationTask[]): void {
    const conflicts = ips.filter((ip) => this.#allocatorFor(ip).markUsed(ip, owner).isConflict);
    if (conflicts.length > 0) queue.push({ kind: 'conflict', addresses: conflicts });
  }

  #allocatorFor(ip: IpValue): PrefixAllocator {
    return ip.family === 'v4' ? this.#v4 : this.#v6;
  }

  #setStatus(key: string, addresses: readonly ServiceEntryAddress[]): void {
    const entry = this.#serviceEntries.get(key);
    if (entry) this.#serviceEntries.set(key, deepFreeze({ ...entry, status: { addresses: [...addresses] } }));
  }

  #specAddresses(entry: ServiceEntry): IpValue[] {
    return entry.spec.addresses.map(parseIp).filter((ip): ip is IpValue => ip !== undefined);
  }

  #statusAddresses(entry: ServiceEntry): IpValue[] {
    return entry.status.addresses.map((address) => parseIp(address.value)).filter((ip): ip is IpValue => ip !== undefined);
  }

  #hostAddresses(entry: ServiceEntry): Map<string, IpValue[]> {
    const byHost = new Map<string, IpValue[]>();
    for (const address of entry.status.addresses) {
      const ip = parseIp(address.value);
      if (ip) byHost.set(address.host, [...(byHost.get(address.host) ?? []), ip]);
    }
    return byHost;
  }
}
