/**
 * `@epreuve/kube`: the Kubernetes layer every Épreuve process shares — REST client, informer,
 * workqueue, leader election, Events, logging, tracing and the process helper. It knows no Épreuve kind:
 * those come from `@epreuve/crds` (`KINDS`).
 */
export {
  type ClientOptions,
  isConflict,
  isGone,
  isNotFound,
  KubeClient,
  KubeError,
  type RetryOptions,
  type WatchEvent,
} from './client.ts';
export { isSubset } from './compare.ts';
export {
  type EventInput,
  EventRecorder,
  type EventRecorderOptions,
  type EventSink,
  type ObjectRef,
} from './events.ts';
export { Informer } from './informer.ts';
export { StringPool } from './intern.ts';
export {
  type Credentials,
  fromKubeConfig,
  fromKubeconfigFiles,
  inCluster,
  loadCredentials,
} from './kubeconfig.ts';
export { type LeaderElectionOptions, LeaderElector } from './leader.ts';
export { createLogger, type LoggerOptions, spanIds, withSpanIds } from './log.ts';
export { configOrExit, type MetricsSource, onShutdown, serveOps } from './process.ts';
export { parseQuantity } from './quantity.ts';
export {
  BucketRateLimiter,
  defaultControllerRateLimiter,
  ItemExponentialRateLimiter,
  MaxOfRateLimiter,
  type RateLimiter,
} from './rate-limiter.ts';
export { RESOURCES, type ResourceType, resourceFor, resourcePath } from './resources.ts';
export { sleep } from './sleep.ts';
export { startTelemetry } from './telemetry.ts';
export { TokenBucket } from './token-bucket.ts';
export { endSpan, linkFromTraceparent, type Span, startSpan } from './tracing.ts';
export { type KubeList, type KubeObject, objectKey, splitKey } from './types.ts';
export { type QueueMetrics, WorkQueue } from './workqueue.ts';
