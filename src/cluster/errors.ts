import { KubewiseError } from "../errors.js";

/** ClusterError is a problem starting, stopping or finding the local control plane. */
export class ClusterError extends KubewiseError {}
