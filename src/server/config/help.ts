// `--help` and `--version` texts, laid out as etcd 3.4 prints them.

import { FLAGS } from './flags.js';

/** The etcd release whose API and behaviour etcd-ts implements. */
export const ETCD_VERSION = '3.4.23';

/** Go's flag package prints this on a usage error, after the message. */
export const USAGE_HEADER = `Usage:

  etcd-ts [flags]
    Start an etcd-ts server (etcd ${ETCD_VERSION} compatible).

  etcd-ts --version
    Show the version of etcd-ts.

  etcd-ts -h | --help
    Show the help information about etcd-ts.

  etcd-ts --config-file
    Path to the server configuration file. Note that if a configuration file is provided, other command line flags and environment variables will be ignored.
`;

export function helpText(): string {
  const lines: string[] = [USAGE_HEADER];
  let group = '';
  for (const spec of FLAGS) {
    if (spec.hidden) continue;
    if (spec.group !== group) {
      group = spec.group;
      lines.push(`\n${group}:`);
    }
    lines.push(`  --${spec.name} '${spec.shownDefault ?? spec.default}'`);
    for (const l of spec.help.split('\n')) lines.push(`    ${l}`);
  }
  lines.push(
    '',
    'Every flag can also be set through its ETCD_* environment variable (e.g. --initial-cluster-token as ETCD_INITIAL_CLUSTER_TOKEN);',
    'a variable and the same flag on the command line together are an error.',
    '',
  );
  return lines.join('\n');
}

/**
 * etcd's `--version` lines, so scripts that read "etcd Version:" keep working, plus
 * what this binary really is.
 */
export function versionText(etcdTsVersion: string): string {
  return [
    `etcd Version: ${ETCD_VERSION}`,
    `etcd-ts Version: ${etcdTsVersion} (etcd-ts, a TypeScript implementation of the etcd ${ETCD_VERSION} API)`,
    'Git SHA: Not provided',
    `Node Version: ${process.version}`,
    `Node OS/Arch: ${process.platform}/${process.arch}`,
    '',
  ].join('\n');
}
