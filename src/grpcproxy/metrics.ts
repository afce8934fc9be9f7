// The proxy's own metrics, under etcd 3.4's names (proxy/grpcproxy/metrics.go), and the
// coalescing figures: how many client watchers share the upstream watches.

import { type Counter, type Gauge, Registry } from 'prom-client';
import { Families } from '../server/metrics.js';

export class ProxyMetrics {
  readonly registry = new Registry();
  /** client watchers served by an upstream watch some other watcher opened */
  readonly watchersCoalescing: Gauge;
  /** events sent to more than one client watcher, counted once per extra watcher */
  readonly eventsCoalescing: Counter;
  readonly cacheKeys: Gauge;
  readonly cacheHits: Gauge;
  readonly cacheMisses: Gauge;
  /** watches the proxy holds on the cluster (etcd-ts's own: etcd 3.4 has no such gauge) */
  readonly upstreamWatchers: Gauge;

  constructor() {
    const f = new Families(this.registry);
    this.watchersCoalescing = f.gauge('etcd_grpc_proxy_watchers_coalescing_total', 'Total number of current watchers coalescing');
    this.eventsCoalescing = f.counter('etcd_grpc_proxy_events_coalescing_total', 'Total number of events coalescing');
    this.cacheKeys = f.gauge('etcd_grpc_proxy_cache_keys_total', 'Total number of keys/ranges cached');
    this.cacheHits = f.gauge('etcd_grpc_proxy_cache_hits_total', 'Total number of cache hits');
    this.cacheMisses = f.gauge('etcd_grpc_proxy_cache_misses_total', 'Total number of cache misses');
    this.upstreamWatchers = f.gauge('etcd_grpc_proxy_upstream_watchers_total', 'Total number of watches the proxy holds on the cluster');
  }
}
