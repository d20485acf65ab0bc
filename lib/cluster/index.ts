export type { ClusterService, ClusterView, ClusterMember, LeadershipEvent, LeadershipTerm, MembershipEvent } from './cluster-service.ts';
export { resolveClusterConfig, createClusterService, inKubernetesPod, CLUSTER_KINDS, type ClusterConfig, type ClusterFlags, type ClusterKind } from './config.ts';
export { ElectorClusterService, type ElectorClusterServiceOptions } from './elector-cluster-service.ts';
export { Elector, type ElectorOptions, type ElectorChange, type Observation } from './election/elector.ts';
export { LockConflictError, LockStoreTimeoutError, microTime, type LockStore, type LockRecord, type VersionedRecord } from './election/lock-store.ts';
export { DEFAULT_TIMINGS, validateTimings, type ElectionTimings } from './election/timings.ts';
export { MemoryLockStore } from './memory/memory-store.ts';
export { FileLockStore } from './file/file-lock-store.ts';
export { singleton, type SingletonService, type SingletonHandle, type SingletonTerm } from './singleton.ts';
