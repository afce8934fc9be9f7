export {
  createHttpHandler,
  createMetricsHttpHandler,
  type HealthResult,
  type HttpDeps,
  type Route,
  type VersionInfo,
} from './handler.js';
