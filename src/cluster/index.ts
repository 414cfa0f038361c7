/**
 * Package cluster runs the embedded local control plane: real kube-apiserver, etcd,
 * kube-controller-manager and kube-scheduler as plain processes on 127.0.0.1, with KWOK
 * simulating nodes and the pod lifecycle. Binaries are built once from pinned Go modules
 * (tools/control-plane) and cached. Nothing of Kubernetes is re-implemented here.
 */
export { CONTROL_PLANE_BINARIES, ensureBinaries, findBinaries, projectRoot } from "./binaries.js";
export {
  DEFAULT_CLUSTER_DIR,
  DEFAULT_NODE_CAPACITY,
  clusterHealth,
  down,
  envExports,
  isRunning,
  readState,
  resolveDir,
  startComponent,
  stopComponent,
  up,
  type ClusterState,
  type ComponentHealth,
  type DownResult,
  type NodeCapacity,
  type UpOptions,
  type UpResult,
} from "./cluster.js";
export { ClusterError } from "./errors.js";
export {
  createCertificateAuthority,
  createSigningKey,
  loadCertificateAuthority,
  type CertificateAuthority,
  type CertificateRequest,
  type KeyPair,
} from "./pki.js";
export type { ComponentName } from "./process.js";
