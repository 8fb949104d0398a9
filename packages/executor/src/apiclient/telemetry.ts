import type { HeartbeatRequestBody } from '@sandfleet/protocol';
import { EXECUTOR_VERSION } from '../version.js';

/** Host facts sent with every heartbeat. */
export interface HeartbeatTelemetry {
  os: string;
  architecture: string;
  gitVersion: string;
  srcCliVersion: string;
  dockerVersion: string;
  igniteVersion: string;
  prometheusMetrics: string;
  /** The runtime steps run in; sent as the `runtime` extension field. */
  runtime: string;
}

type TelemetryFields = Pick<
  HeartbeatRequestBody,
  'os' | 'architecture' | 'dockerVersion' | 'executorVersion' | 'gitVersion' | 'igniteVersion' | 'srcCliVersion' | 'prometheusMetrics'
>;

/**
 * The heartbeat's telemetry fields: what is known, this platform's OS and architecture, empty
 * otherwise. `runtime` only when known: Sourcegraph's fields stay exactly as its executor sends them.
 */
export function heartbeatTelemetryFields(telemetry: Partial<HeartbeatTelemetry>): Required<TelemetryFields> & Pick<HeartbeatRequestBody, 'runtime'> {
  return {
    os: telemetry.os ?? goOs(),
    architecture: telemetry.architecture ?? goArch(),
    dockerVersion: telemetry.dockerVersion ?? '',
    executorVersion: EXECUTOR_VERSION,
    gitVersion: telemetry.gitVersion ?? '',
    igniteVersion: telemetry.igniteVersion ?? '',
    srcCliVersion: telemetry.srcCliVersion ?? '',
    prometheusMetrics: telemetry.prometheusMetrics ?? '',
    ...(telemetry.runtime ? { runtime: telemetry.runtime } : {}),
  };
}

/** `runtime.GOOS` spelling of this platform. */
export function goOs(): string {
  return process.platform === 'win32' ? 'windows' : process.platform;
}

/** `runtime.GOARCH` spelling of this architecture. */
export function goArch(): string {
  const map: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' };
  return map[process.arch] ?? process.arch;
}
