// Checks of the bootstrap flags that only apply to a member starting without a WAL:
// once a data dir holds a cluster, etcd ignores --initial-cluster and friends, so the
// server calls this only when it is about to bootstrap from the flags.

import type { EtcdConfig } from './types.js';
import { formatInitialCluster, urlString } from './values.js';

/**
 * etcd's VerifyBootstrap (state `new`) / VerifyJoinExisting (state `existing`):
 * returns a message to refuse the start with, or undefined when the flags agree.
 */
export function checkBootstrapFlags(c: EtcdConfig): string | undefined {
  if (c.initialCluster.size === 0) return 'initial cluster unset and no discovery URL found; set --initial-cluster';
  const mine = c.initialCluster.get(c.name);
  if (mine === undefined) {
    return `couldn't find local name ${JSON.stringify(c.name)} in the initial cluster configuration: --initial-cluster has no member named ${JSON.stringify(c.name)}; add it or fix --name`;
  }
  const seen = new Map<string, string>();
  for (const [name, urls] of c.initialCluster) {
    for (const u of urls) {
      const s = urlString(u);
      const other = seen.get(s);
      if (other !== undefined) {
        return `initial cluster ${formatInitialCluster(c.initialCluster)} has duplicate url ${s} (members ${JSON.stringify(other)} and ${JSON.stringify(name)})`;
      }
      seen.set(s, name);
    }
  }
  if (c.initialClusterState === 'existing') return undefined;
  const advertised = c.initialAdvertisePeerUrls.map(urlString).sort();
  const listed = mine.map(urlString).sort();
  if (advertised.join(',') !== listed.join(',')) {
    const mstr = listed.map((u) => `${c.name}=${u}`).join(',');
    return (
      `--initial-cluster has ${mstr} but missing from --initial-advertise-peer-urls=${advertised.join(',')} ` +
      `(resolved urls: ${JSON.stringify(advertised.join(','))} != ${JSON.stringify(listed.join(','))}); ` +
      `make this member's --initial-cluster entry match --initial-advertise-peer-urls`
    );
  }
  return undefined;
}
