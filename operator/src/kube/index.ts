/** Épreuve's Kubernetes client layer, shared with the API: REST client, informer, kinds. */
export { isConflict, isGone, isNotFound, KubeClient, KubeError, type WatchEvent } from './client.ts';
export { isSubset } from './compare.ts';
export { Informer } from './informer.ts';
export { RESOURCES, type ResourceType, resourceFor, resourcePath } from './resources.ts';
export { type KubeList, type KubeObject, objectKey, splitKey } from './types.ts';
