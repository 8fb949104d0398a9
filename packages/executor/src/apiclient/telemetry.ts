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
}

type TelemetryFields = Pick<
  HeartbeatRequestBody,
  'os' | 'architecture' | 'dockerVersion' | 'executorVersion' | 'gitVersion' | 'igniteVersion' | 'srcCliVersion' | 'prometheusMetrics'
>;

/** The heartbeat's telemetry fields: what is known, this platform's OS and architecture, empty otherwise. */
export function heartbeatTelemetryFields(telemetry: Partial<HeartbeatTelemetry>): Required<TelemetryFields> {
  return {
    os: telemetry.os ?? goOs(),
    architecture: telemetry.architecture ?? goArch(),
    dockerVersion: telemetry.dockerVersion ?? '',
    executorVersion: EXECUTOR_VERSION,
    gitVersion: telemetry.gitVersion ?? '',
    igniteVersion: telemetry.igniteVersion ?? '',
    srcCliVersion: telemetry.srcCliVersion ?? '',
    prometheusMetrics: telemetry.prometheusMetrics ?? '',
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
