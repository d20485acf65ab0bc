/** Test aids for dromedary users (`dromedary/testing`). */
export * from './kube-api/index.ts';
