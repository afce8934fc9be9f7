// Where a new member's initial cluster comes from: --initial-cluster as given, or a
// discovery, through etcd's discovery service (discovery.ts) or the SRV records of a
// domain (srv-discovery.ts), with the hints etcd gives when one fails.

import type { Logger } from 'pino';
import { BootstrapError } from './bootstrap-error.js';
import type { EtcdConfig } from './config/types.js';
import { parseInitialCluster, urlString } from './config/values.js';
import { DiscoveryError, DiscoveryErrors, joinDiscoveryCluster } from './discovery.js';
import { computeMemberId } from './ids.js';
import { srvCluster } from './srv-discovery.js';

/**
 * The token member IDs are computed with: --initial-cluster-token, or the discovery URL
 * when the cluster is discovered (etcd's PeerURLsMapAndToken), also for the members added
 * to it later.
 */
export function clusterToken(cfg: Pick<EtcdConfig, 'discovery' | 'initialClusterToken'>): string {
  return cfg.discovery !== '' ? cfg.discovery : cfg.initialClusterToken;
}

/** The configuration with the initial cluster a discovery found, or as it is (--initial-cluster). */
export async function initialClusterOf(cfg: EtcdConfig, log: Logger): Promise<EtcdConfig> {
  if (cfg.discovery !== '') return discoverCluster(cfg, log);
  if (cfg.discoverySrv !== '') return srvDiscoveredCluster(cfg, log);
  return cfg;
}

/** --discovery-srv: the initial cluster the domain's SRV records describe (srv-discovery.ts). */
async function srvDiscoveredCluster(cfg: EtcdConfig, log: Logger): Promise<EtcdConfig> {
  let found: string;
  try {
    found = await srvCluster({
      domain: cfg.discoverySrv,
      serviceName: cfg.discoverySrvName,
      name: cfg.name,
      advertisePeerUrls: cfg.initialAdvertisePeerUrls,
      log: log.child({ caller: 'embed' }),
    });
  } catch (err) {
    log.warn({ error: (err as Error).message }, 'failed to resolve during SRV discovery');
    throw new BootstrapError((err as Error).message);
  }
  const cluster = parseInitialCluster(found);
  if (!cluster.ok) throw new BootstrapError(`the SRV records of ${cfg.discoverySrv} give ${found}, not an initial cluster: ${cluster.reason}`);
  if (!cluster.value.has(cfg.name)) throw new BootstrapError(`cannot find local etcd member "${cfg.name}" in SRV records`);
  return { ...cfg, initialCluster: cluster.value };
}

/**
 * --discovery: the configuration with the initial cluster the discovery service assembled
 * (discovery.ts) and, as etcd takes it, the discovery URL as the cluster token, from which
 * every member computes the same member and cluster IDs.
 */
async function discoverCluster(cfg: EtcdConfig, log: Logger): Promise<EtcdConfig> {
  const token = clusterToken(cfg);
  const peerUrls = cfg.initialAdvertisePeerUrls.map(urlString);
  const discoveryLog = log.child({ caller: 'discovery' });
  let found: string;
  try {
    found = await joinDiscoveryCluster({
      url: cfg.discovery,
      memberId: computeMemberId(peerUrls, token),
      self: peerUrls.map((u) => `${cfg.name}=${u}`).sort().join(','),
      log: discoveryLog,
    });
  } catch (err) {
    if (err instanceof DiscoveryError) explainDiscoveryFailure(cfg, err, discoveryLog);
    throw err;
  }
  const cluster = parseInitialCluster(found);
  if (!cluster.ok) throw new BootstrapError(`the discovery service's cluster ${found} is not an initial cluster: ${cluster.reason}`);
  return { ...cfg, initialCluster: cluster.value, initialClusterToken: token };
}

/** What etcd's etcdmain tells an operator after a discovery fails, by the cause. */
function explainDiscoveryFailure(cfg: EtcdConfig, err: DiscoveryError, log: Logger): void {
  const token = { 'discovery-token': cfg.discovery, error: err.reason };
  if (err.reason === DiscoveryErrors.duplicateId) {
    log.warn({ name: cfg.name, ...token }, 'member has been registered with discovery service');
    log.warn({ 'data-dir': cfg.dataDir }, 'but could not find valid cluster configuration');
    log.warn('check data dir if previous bootstrap succeeded');
    log.warn('or use a new discovery token if previous bootstrap failed');
    return;
  }
  if (err.reason === DiscoveryErrors.duplicateName) {
    log.warn(token, 'member with duplicated name has already been registered');
    log.warn('cURL the discovery token URL for details');
  } else {
    if (err.reason === DiscoveryErrors.fullCluster && cfg.discoveryFallback === 'proxy') {
      // etcd becomes a v2 proxy of the cluster here; etcd-ts has no proxy mode
      log.warn(
        { 'fallback-proxy': 'proxy', ...token },
        'discovery cluster is full, and etcd-ts cannot fall back to a proxy; add this member with "etcdctl member add" and start it with --initial-cluster-state existing',
      );
    }
    log.warn(token, 'failed to bootstrap; discovery token was already used');
  }
  log.warn('do not reuse discovery token; generate a new one to bootstrap a cluster');
}
