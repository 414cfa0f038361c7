import { existsSync } from "node:fs";
import type { Logger } from "../log.js";
import { RuleAllocator, type Allocator } from "./allocator.js";
import { AllocationApplier } from "./apply.js";
import { CgroupReader, detectCgroupLayout, kubepodsPath, type CgroupLayout } from "./cgroups.js";
import type { AgentConfig } from "./config.js";
import { AgentError } from "./errors.js";
import { MetricsServer, parseListen, TaskMetrics, type ListenAddress } from "./metrics.js";
import { KubeletPodSource, type PodSource } from "./podsource.js";
import { AgentRunner } from "./runner.js";

/**
 * NodeAgent puts the parts together from agent.yaml and the command line: cgroup layout,
 * reader, pod source, metrics and their HTTP server, allocator, and the loop.
 */

/**
 * StoppablePodSource is a pod source that may hold connections (the API-server source's
 * watches); NodeAgent.stop() stops it.
 */
export type StoppablePodSource = PodSource & { stop?(): Promise<void> };

/** ApiServerPodSourceFactory builds the API-server pod source for a node (it lives on src/kube). */
export type ApiServerPodSourceFactory = (nodeName: string, config: AgentConfig) => StoppablePodSource;

/** NodeAgentOptions are the command-line choices that override agent.yaml. */
export interface NodeAgentOptions {
  config: AgentConfig;
  log: Logger;
  /** nodeName overrides config.node_name; needed by the API-server source. */
  nodeName?: string;
  cgroupRoot?: string;
  /** listen overrides config.listen; "" serves no HTTP. */
  listen?: string;
  podSource?: "apiserver" | "kubelet";
  /** apiServerSource builds the API-server source; without it `apiserver` cannot be used. */
  apiServerSource?: ApiServerPodSourceFactory;
  /** allocator replaces the rule-based allocator built from config.allocation. */
  allocator?: Allocator;
}

/** NodeAgent runs the loop and serves its metrics; start() and stop() as every loop in kubewise. */
export class NodeAgent {
  readonly layout: CgroupLayout;
  readonly runner: AgentRunner;
  readonly metrics: TaskMetrics;
  readonly source: StoppablePodSource;
  private readonly server: MetricsServer | undefined;
  private readonly log: Logger;

  constructor(options: NodeAgentOptions) {
    const { config, log } = options;
    this.log = log;
    const nodeName = options.nodeName ?? config.node_name ?? "";
    this.layout = detectCgroupLayout(
      options.cgroupRoot ?? config.cgroup_root,
      config.cgroup_driver,
      config.cgroup_version,
      config.cgroup_parent,
    );
    this.source = podSourceFor(options.podSource ?? config.pod_source, nodeName, options);
    this.metrics = new TaskMetrics({
      node: nodeName,
      cgroupVersion: this.layout.version,
      cgroupDriver: this.layout.driver,
      podSource: this.source.name,
    });
    const allocation = config.allocation;
    const reader = new CgroupReader(this.layout, { readAllocations: allocation.enabled });
    const applier = allocation.enabled
      ? new AllocationApplier({
          layout: this.layout,
          reader,
          allocator:
            options.allocator ??
            new RuleAllocator({ rules: allocation.rules, fromAnnotations: allocation.from_annotations }),
          cpuManager: { policy: config.cpu_manager.policy, stateFile: config.cpu_manager.state_file },
          log,
        })
      : undefined;
    this.runner = new AgentRunner({
      source: this.source,
      reader,
      metrics: this.metrics,
      namespaces: config.monitored_namespaces,
      intervalMs: config.interval_seconds * 1000,
      applier,
      metricsFile: config.metrics_file,
      log,
    });
    const listen = options.listen ?? config.listen;
    this.server =
      listen === ""
        ? undefined
        : new MetricsServer(this.metrics, parseListen(listen), () => this.runner.health());
  }

  /** start serves the metrics (resolving with the bound address) and starts the loop. */
  async start(): Promise<ListenAddress | undefined> {
    this.warnOnDriverMismatch();
    const address = await this.server?.start();
    this.runner.start();
    this.log.info(
      {
        cgroupVersion: this.layout.version,
        cgroupDriver: this.layout.driver,
        cgroupRoot: this.layout.root,
        podSource: this.source.name,
        listen: address ? `${address.host}:${address.port}` : "off",
      },
      "agent started",
    );
    return address;
  }

  /** stop ends the loop after its current iteration, stops the pod source and closes the server. */
  async stop(): Promise<void> {
    await this.runner.stop();
    await this.source.stop?.();
    await this.server?.stop();
    this.log.info("agent stopped");
  }

  /** warnOnDriverMismatch says so when the kubelet's pods live under the other driver's names. */
  private warnOnDriverMismatch(): void {
    const probe = this.layout.controllers.cpu ?? this.layout.controllers.memory ?? this.layout.root;
    const other = this.layout.driver === "systemd" ? "cgroupfs" : "systemd";
    const mine = kubepodsPath(this.layout.driver, this.layout.kubepods);
    if (existsSync(probe + mine)) return;
    if (this.layout.kubepods === undefined && existsSync(probe + kubepodsPath(other))) {
      this.log.warn(
        { configured: this.layout.driver, found: other },
        "no kubepods cgroup for the configured cgroup_driver, but there is one for the other driver: set cgroup_driver",
      );
    } else {
      this.log.warn(
        { path: probe + mine },
        "no kubepods cgroup yet: is this a Kubernetes node, and --cgroup-root (and cgroup_parent) right?",
      );
    }
  }
}

function podSourceFor(
  kind: "apiserver" | "kubelet",
  nodeName: string,
  options: NodeAgentOptions,
): StoppablePodSource {
  const { config } = options;
  if (kind === "kubelet") {
    return new KubeletPodSource({
      endpoint: config.kubelet_endpoint,
      serverVerify: config.ssl.server_verify,
      clientCertPath: config.ssl.client_cert_path,
      clientKeyPath: config.ssl.client_key_path,
      serverName: config.ssl.server_name,
      tokenPath: config.kubelet_token_path,
      timeoutMs: config.timeout_seconds * 1000,
    });
  }
  if (!nodeName) {
    throw new AgentError(
      "config",
      "the apiserver pod source needs the node's name: --node-name, $NODE_NAME or node_name in agent.yaml",
    );
  }
  if (!options.apiServerSource) {
    throw new AgentError(
      "unsupported",
      "the apiserver pod source needs a Kubernetes client, and none was given; use --pod-source kubelet (pod_source: kubelet)",
    );
  }
  return options.apiServerSource(nodeName, config);
}
