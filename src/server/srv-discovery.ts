// DNS discovery (--discovery-srv): a member's initial cluster, or the gateway's and the
// gRPC proxy's endpoints, from the SRV records of a domain. For a member, as etcd's
// srv.GetCluster reads them: `_etcd-server-ssl._tcp.<domain>` lists the members'
// peer endpoints for https, `_etcd-server._tcp.<domain>` for http (`-<name>` after
// "server" with --discovery-srv-name). The record whose endpoint is one this member
// advertises gets this member's name; the others get names "0", "1", ... (a member's ID
// depends on its peer URLs alone, so every member computes the same IDs).
//
// etcd 3.4.23 reads only the https records (it keeps the http ones only when their lookup
// fails, a slip fixed in 3.5); etcd-ts reads both, as 3.5 does.

import { lookup, resolveSrv } from 'node:dns/promises';
import { readFile } from 'node:fs/promises';
import tls from 'node:tls';
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

/** host:port as the first address the host resolves to (Go's ResolveTCPAddr); a host may be a bracketed IPv6 literal. */
export async function tcpAddress(host: string, port: number): Promise<string> {
  const { address, family } = await lookup(host.replace(/^\[(.*)\]$/, '$1'));
  return family === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}

export interface SrvClientOptions {
  readonly domain: string;
  readonly serviceName: string;
  /** --insecure-discovery: take http endpoints, and https ones without a TLS check */
  readonly insecure: boolean;
  /** the CA file the https endpoints' certificates are checked with; '' for the system's */
  readonly caFile: string;
  readonly log: Logger;
}

/** A client endpoint an SRV record names, with the record's priority and weight (the gateway picks by them). */
export interface SrvEndpoint {
  /** scheme://host:port */
  readonly url: string;
  readonly priority: number;
  readonly weight: number;
}

/**
 * The client endpoints (`scheme://host:port`) of `_etcd-client-ssl._tcp.<domain>` and
 * `_etcd-client._tcp.<domain>` for the gateway and the gRPC proxy (etcd's srv.GetClient
 * and etcdmain's discoverEndpoints). Unless `insecure`, only https endpoints that complete
 * a TLS handshake (CA `caFile`, server name the domain) are kept; the caller falls back to
 * its --endpoints when none are. Throws when neither lookup succeeds.
 */
export async function srvClientEndpoints(opts: SrvClientOptions): Promise<SrvEndpoint[]> {
  const suffix = opts.serviceName !== '' ? `-${opts.serviceName}` : '';
  const found: SrvEndpoint[] = [];
  const errors: string[] = [];
  for (const [scheme, service] of [
    ['https', `etcd-client-ssl${suffix}`],
    ['http', `etcd-client${suffix}`],
  ] as const) {
    try {
      for (const r of await resolveSrv(`_${service}._tcp.${opts.domain}`)) {
        found.push({ url: `${scheme}://${hostPort(r.name.replace(/\.$/, ''), r.port)}`, priority: r.priority, weight: r.weight });
      }
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  if (errors.length === 2) throw new Error(`dns lookup errors: ${errors[0]} and ${errors[1]}`);
  const urls = (eps: readonly SrvEndpoint[]) => eps.map((e) => e.url);
  opts.log.info({ 'srv-server': opts.domain, endpoints: urls(found) }, 'discovered cluster from SRV');
  if (opts.insecure) return found;
  opts.log.info({ 'srv-server': opts.domain, endpoints: urls(found) }, 'validating discovered SRV endpoints');
  const ca = opts.caFile !== '' ? [await readFile(opts.caFile)] : undefined;
  const valid: SrvEndpoint[] = [];
  const refusals: string[] = [];
  for (const ep of found) {
    if (!ep.url.startsWith('https://')) {
      refusals.push(`${JSON.stringify(ep.url)} is insecure`);
      continue;
    }
    const u = new URL(ep.url);
    try {
      await tlsHandshake(u.hostname.replace(/^\[(.*)\]$/, '$1'), Number(u.port), opts.domain, ca);
      valid.push(ep);
    } catch (err) {
      refusals.push(`${JSON.stringify(ep.url)} failed to dial (${(err as Error).message})`);
    }
  }
  if (refusals.length > 0) opts.log.warn({ 'srv-server': opts.domain, endpoints: urls(valid), error: refusals.join(',') }, 'failed to validate discovered endpoints');
  else opts.log.info({ 'srv-server': opts.domain, endpoints: urls(valid) }, 'using validated discovered SRV endpoints');
  return valid;
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Dials host:port and completes a TLS handshake that checks the certificate for `servername`. */
function tlsHandshake(host: string, port: number, servername: string, ca: Buffer[] | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host, port, servername, ...(ca !== undefined ? { ca } : {}), timeout: HANDSHAKE_TIMEOUT_MS }, () => {
      socket.destroy();
      resolve();
    });
    socket.on('timeout', () => socket.destroy(new Error(`no TLS handshake within ${HANDSHAKE_TIMEOUT_MS} ms`)));
    socket.on('error', reject);
  });
}

/** etcd's NewTransport dial timeout for the check. */
const HANDSHAKE_TIMEOUT_MS = 5000;
