// etcd's check that a client certificate names the address it connects from (its
// transport.checkSAN), made on peer and https metrics listeners once the handshake is
// over: a certificate the CA signed for one host cannot be carried to another and used
// there as a member. A certificate with no IP or DNS names passes, as in etcd; so does
// any connection when --experimental-peer-skip-client-san-verification is set.
//
// The IP names are compared first. When they miss and the certificate has DNS names,
// the connecting address is looked up both ways, as etcd does: its reverse names (the
// hosts file, then PTR records) against the DNS names and their wildcards, then each
// non-wildcard DNS name forward (getaddrinfo: the hosts file, then DNS) against the address.

import type { X509Certificate } from 'node:crypto';
import { promises as dns } from 'node:dns';
import net from 'node:net';

/** The names a certificate is valid for, from its subjectAltName extension. */
export interface CertNames {
  ips: string[];
  dnsNames: string[];
}

/** Node writes the extension as `DNS:a, IP Address:1.2.3.4`, a value with special characters quoted as JSON. */
export function certNames(cert: X509Certificate): CertNames {
  const names: CertNames = { ips: [], dnsNames: [] };
  const text = cert.subjectAltName;
  if (text === undefined) return names;
  for (const m of text.matchAll(/(DNS|IP Address):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g)) {
    const value = m[2]!.startsWith('"') ? unquote(m[2]!) : m[2]!;
    if (m[1] === 'DNS') names.dnsNames.push(value);
    else names.ips.push(canonicalIp(value));
  }
  return names;
}

/** A value Node quoted as JSON; kept as it is if it does not parse (nothing a client sends may throw here). */
function unquote(quoted: string): string {
  try {
    return String(JSON.parse(quoted));
  } catch {
    return quoted;
  }
}

/** Go's form of an IP: IPv4 dotted, IPv6 compressed and in lower case, an IPv4-mapped IPv6 address as IPv4. */
function canonicalIp(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return mapped[1]!;
  if (!net.isIPv6(ip)) return ip;
  // the URL parser compresses an IPv6 address the way Go prints one (isIPv6 vouched that it parses)
  return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
}

/** The names `ip` has: getnameinfo gives the hosts file's first name, c-ares the other aliases and PTR records. */
async function reverseNames(ip: string): Promise<string[]> {
  const [byService, byPtr] = await Promise.allSettled([dns.lookupService(ip, 0), dns.reverse(ip)]);
  const names = [...(byService.status === 'fulfilled' ? [byService.value.hostname] : []), ...(byPtr.status === 'fulfilled' ? byPtr.value : [])];
  if (names.length === 0) throw lookupError(ip, byPtr.status === 'rejected' ? byPtr.reason : undefined);
  return names;
}

/** The addresses `host` resolves to (getaddrinfo: the hosts file, then DNS), in Go's form. */
async function addressesOf(host: string): Promise<string[]> {
  try {
    return (await dns.lookup(host, { all: true })).map((a) => canonicalIp(a.address));
  } catch (err) {
    throw lookupError(host, err);
  }
}

/** Go's resolver errors by node:dns's codes (getaddrinfo's and c-ares'). */
const GO_LOOKUP_ERRORS: Record<string, string> = {
  ENOTFOUND: 'no such host',
  ENODATA: 'no such host',
  EAI_AGAIN: 'server misbehaving',
  ESERVFAIL: 'server misbehaving',
  EREFUSED: 'server misbehaving',
  ETIMEOUT: 'i/o timeout',
};

/** Go's resolver error, without the DNS server's address Go names. */
function lookupError(name: string, err: unknown): Error {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const why = code === undefined ? 'no such host' : (GO_LOOKUP_ERRORS[code] ?? (err as Error).message);
  return new Error(`lookup ${name}: ${why}`);
}

/**
 * Why etcd would refuse a client certificate `cert` presented from `remoteIp`, in its
 * words (Go's x509 HostnameError, or checkCertSAN's own), or undefined to accept it.
 */
export async function clientSanRefusal(cert: X509Certificate, remoteIp: string): Promise<string | undefined> {
  const { ips, dnsNames } = certNames(cert);
  if (ips.length === 0 && dnsNames.length === 0) return undefined;
  const host = canonicalIp(remoteIp);
  if (ips.length > 0) {
    if (ips.includes(host)) return undefined;
    if (dnsNames.length === 0) return `x509: certificate is valid for ${ips.join(', ')}, not ${host}`;
  }
  const { found, error } = await hostInDns(host, dnsNames);
  if (found) return undefined;
  const quoted = dnsNames.map((n) => JSON.stringify(n)).join(' ');
  return `tls: ${JSON.stringify(host)} does not match any of DNSNames [${quoted}]${error !== undefined ? ` (${error})` : ''}`;
}

/** etcd's isHostInDNS: the last lookup error is kept for the refusal's message. */
async function hostInDns(host: string, dnsNames: readonly string[]): Promise<{ found: boolean; error?: string }> {
  const wildcards = dnsNames.filter((n) => n.startsWith('*.')).map((n) => n.slice(1));
  const names = dnsNames.filter((n) => !n.startsWith('*.'));
  let error: string | undefined;
  try {
    for (const reverse of await reverseNames(host)) {
      const name = reverse.endsWith('.') ? reverse.slice(0, -1) : reverse;
      if (wildcards.some((w) => name.endsWith(w)) || names.includes(name)) return { found: true };
    }
  } catch (err) {
    error = (err as Error).message;
  }
  for (const name of names) {
    try {
      if ((await addressesOf(name)).includes(host)) return { found: true };
    } catch (err) {
      error = (err as Error).message;
    }
  }
  return error === undefined ? { found: false } : { found: false, error };
}
