// Settings etcd-ts accepts so existing command lines and unit files keep working, but
// does not act on: each one set away from its default earns a warning at start. Beside
// them, the warnings etcd itself gives about a configuration it accepts, and one for the
// setting that gives up durability (etcd says so only in its help text).

import type { EtcdConfig } from './types.js';

const NOT_IMPLEMENTED = 'is accepted for compatibility but not implemented by etcd-ts; it has no effect';

export function compatibilityWarnings(c: EtcdConfig): string[] {
  const w: string[] = [];
  const flag = (name: string, set: boolean) => {
    if (set) w.push(`--${name} ${NOT_IMPLEMENTED}`);
  };
  flag('proxy', c.proxy !== 'off');
  flag('proxy-failure-wait', c.proxyFailureWait !== 5000);
  flag('proxy-refresh-interval', c.proxyRefreshInterval !== 30000);
  flag('proxy-dial-timeout', c.proxyDialTimeout !== 1000);
  flag('proxy-write-timeout', c.proxyWriteTimeout !== 5000);
  flag('proxy-read-timeout', c.proxyReadTimeout !== 0);
  flag('discovery-proxy', c.discoveryProxy !== '');
  flag('experimental-enable-v2v3', c.experimentalEnableV2v3 !== '');
  // etcd reads it only for its capnslog logger
  if (c.logPackageLevels !== '' && c.logger === 'zap') w.push('--log-package-levels is read only with --logger=capnslog, as etcd reads it; it has no effect with --logger=zap');
  // The backend is LevelDB, not bbolt: there is no freelist to choose.
  flag('experimental-backend-bbolt-freelist-type', c.experimentalBackendBboltFreelistType !== 'array');
  if (c.debug) w.push("--debug is deprecated; use '--log-level=debug' instead");
  if (c.unsafeNoFsync) w.push('--unsafe-no-fsync: the WAL is never fsynced; a power cut or a kernel crash may lose acknowledged writes');
  if (c.experimentalEnableLeaseCheckpoint && !c.experimentalEnableLeaseCheckpointPersist) {
    w.push('Detected that checkpointing is enabled without persistence. Consider enabling experimental-enable-lease-checkpoint-persist');
  }
  for (const u of c.listenClientUrls) {
    if (u.protocol === 'http:' && c.certFile !== '' && c.keyFile !== '') {
      w.push(`scheme is HTTP while key and cert files are present; ignoring key and cert files (client-url ${u.protocol}//${u.host})`);
    }
  }
  return w;
}
