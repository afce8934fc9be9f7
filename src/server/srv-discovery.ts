// DNS discovery (--discovery-srv): the initial cluster from the SRV records of a domain,
// as etcd's srv.GetCluster reads them. `_etcd-server-ssl._tcp.<domain>` lists the members'
// peer endpoints for https, `_etcd-server._tcp.<domain>` for http (`-<name>` after
// "server" with --discovery-srv-name). The record whose endpoint is one this member
// advertises gets this member's name; the others get names "0", "1", ... (a member's ID
// depends on its peer URLs alone, so every member computes the same IDs).
//
// etcd 3.4.23 reads only the https records (it keeps the http ones only when their lookup
// fails, a slip fixed in 3.5); etcd-ts reads both, as 3.5 does.

import { lookup, resolveSrv } from 'node:dns/promises';
import type { Logger } from 'pino';
import { urlPort, urlString } from './config/values.js';

export interface SrvDiscoveryOptions {
  readonly domain: string;
  /** --discovery-srv-name: a suffix of the service names */
  readonly serviceName: string;
  /** this member's --name and --initial-advertise-peer-urls */
  readonly name: string;
  readonly advertisePeerUrls: readonly URL[];
  readonly log: Logger;
}

/** The initial cluster (`name=url,...`) the domain's SRV records describe. */
export async function srvCluster(opts: SrvDiscoveryOptions): Promise<string> {
  const suffix = opts.serviceName !== '' ? `-${opts.serviceName}` : '';
  const own = new Map<string, URL>();
  for (const u of opts.advertisePeerUrls) own.set(await tcpAddress(u.hostname, urlPort(u)), u);
  const parts: string[] = [];
  const errors: string[] = [];
  let tempName = 0;
  for (const [scheme, service] of [
    ['https', `etcd-server-ssl${suffix}`],
    ['http', `etcd-server${suffix}`],
  ] as const) {
    const found: string[] = [];
    let error: string | undefined;
    try {
      for (const r of await resolveSrv(`_${service}._tcp.${opts.domain}`)) {
        const host = r.name.replace(/\.$/, '');
        const endpoint = `${scheme}://${host.includes(':') ? `[${host}]` : host}:${r.port}`;
        let addr: string;
        try {
          addr = await tcpAddress(host, r.port);
        } catch (err) {
          error = (err as Error).message;
          continue;
        }
        const mine = own.get(addr);
        if (mine !== undefined && mine.protocol !== `${scheme}:`) {
          error = `bootstrap at ${endpoint} from DNS for ${service} has scheme mismatch with expected peer ${urlString(mine)}`;
          continue;
        }
        found.push(`${mine !== undefined ? opts.name : String(tempName++)}=${endpoint}`);
      }
      if (found.length === 0 && error !== undefined) error = `error querying DNS SRV records for _${service} ${error}`;
    } catch (err) {
      error = `error querying DNS SRV records for _${service} ${(err as Error).message}`;
    }
    opts.log.info(
      {
        'service-scheme': scheme,
        'service-name': service,
        'server-name': opts.name,
        'discovery-srv': opts.domain,
        'advertise-peer-urls': opts.advertisePeerUrls.map(urlString),
        'found-cluster': found,
        ...(error !== undefined ? { error } : {}),
      },
      `get cluster for ${service} SRV`,
    );
    parts.push(...found);
    if (found.length === 0 && error !== undefined) errors.push(error);
  }
  if (parts.length === 0) throw new Error(errors.join('; '));
  for (const node of parts) opts.log.info({ node }, 'got bootstrap from DNS for etcd-server');
  return parts.join(',');
}

/** host:port as the first address the host resolves to (Go's ResolveTCPAddr). */
async function tcpAddress(host: string, port: number): Promise<string> {
  const { address, family } = await lookup(host.replace(/^\[(.*)\]$/, '$1'));
  return family === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}
