import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';
import { parse } from 'yaml';
import { bridgeSocketPath, QemuBackedGuest } from './fake-firecracker-guest.js';

/**
 * A stand-in for the Firecracker VMM where no Firecracker binary or usable KVM exists. It takes
 * Firecracker's arguments (`--api-sock`, `--id`), serves the HTTP API on the socket and answers as
 * Firecracker does: 204 for accepted requests, 400 with `{"fault_message": …}` for bodies the
 * OpenAPI schema rejects, for unknown paths and methods, and for what Firecracker's state machine
 * rejects (pre-boot resources after InstanceStart, post-boot ones before it, InstanceStart without
 * a kernel, a second start, files that cannot be opened, a drive id that differs from its path).
 * It boots nothing, unless started as FAKE_FIRECRACKER_QEMU_BIN: then InstanceStart boots the configured
 * guest under QEMU (fake-firecracker-guest.ts) and vsock CONNECTs reach the guest's agent. Every
 * request is appended to `<api-sock>.requests.jsonl` so tests can see what a driver sent.
 */

export const FAKE_FIRECRACKER_BIN = fileURLToPath(new URL('../bin/fake-firecracker.js', import.meta.url));
/** The same fake, booting the configured guest under QEMU at InstanceStart (fake-firecracker-guest.ts). */
export const FAKE_FIRECRACKER_QEMU_BIN = fileURLToPath(new URL('../bin/fake-firecracker-qemu.js', import.meta.url));
/** A jailer stand-in (bin/fake-jailer): the jailer's arguments and chroot layout, without chroot or uid change. */
export const FAKE_JAILER_BIN = fileURLToPath(new URL('../bin/fake-jailer', import.meta.url));
export const FAKE_FIRECRACKER_VERSION = '1.17.0-fake';
const SCHEMA_FILE = fileURLToPath(new URL('../../executor/src/sandbox/vm/firecracker/firecracker-api.yaml', import.meta.url));
const MAX_BODY_BYTES = 64 * 1024;

const NOT_AFTER_START = 'The requested operation is not supported after starting the microVM.';
const NOT_BEFORE_START = 'The requested operation is not supported before starting the microVM.';

/** Operations Firecracker accepts only before InstanceStart (`Pre-boot only` in its schema). */
const PRE_BOOT = new Set([
  'PUT /boot-source', 'PUT /cpu-config', 'PUT /drives/{drive_id}', 'PUT /pmem/{id}', 'PUT /logger', 'PUT /machine-config',
  'PATCH /machine-config', 'PUT /metrics', 'PUT /mmds/config', 'PUT /entropy', 'PUT /serial', 'PUT /hotplug/memory',
  'PUT /network-interfaces/{iface_id}', 'PUT /vsock', 'PUT /balloon', 'PUT /snapshot/load',
]);
/** Operations Firecracker accepts only once the VM runs (`Post-boot only`). */
const POST_BOOT = new Set([
  'PATCH /drives/{drive_id}', 'PATCH /pmem/{id}', 'PATCH /network-interfaces/{iface_id}', 'PATCH /vm', 'PATCH /balloon',
  'PATCH /balloon/statistics', 'GET /balloon/statistics', 'PUT /snapshot/create', 'PATCH /hotplug/memory',
]);

interface Route {
  template: string;
  pattern: RegExp;
  names: string[];
  methods: Map<string, ValidateFunction | null>;
}

function loadRoutes(): Route[] {
  const doc = parse(fs.readFileSync(SCHEMA_FILE, 'utf8')) as {
    paths: Record<string, Record<string, { parameters?: { in: string; schema?: object }[] }>>;
    definitions: object;
  };
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  ajv.addSchema({ $id: 'fc', definitions: strict(doc.definitions) });
  return Object.entries(doc.paths).map(([template, ops]) => {
    const names: string[] = [];
    const pattern = new RegExp(`^${template.replace(/\{(\w+)\}/g, (_m, n: string) => { names.push(n); return '([^/]+)'; })}$`);
    const methods = new Map<string, ValidateFunction | null>();
    for (const [method, op] of Object.entries(ops)) {
      const body = op.parameters?.find((p) => p.in === 'body')?.schema;
      methods.set(method.toUpperCase(), body ? ajv.compile(JSON.parse(JSON.stringify(body).replaceAll('"#/definitions/', '"fc#/definitions/')) as object) : null);
    }
    return { template, pattern, names, methods };
  });
}

/** Firecracker's request types deny unknown fields (serde); the schema leaves that implicit. */
function strict(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(strict);
  if (schema === null || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) {
    out[k] = k === 'properties' || k === 'definitions' ? Object.fromEntries(Object.entries(v as object).map(([n, sub]) => [n, strict(sub)])) : strict(v);
  }
  if ('properties' in out && !('additionalProperties' in out)) out.additionalProperties = false;
  return out;
}

class Fault extends Error {
  constructor(message: string, readonly status = 400) {
    super(message);
  }
}

interface VmState {
  id: string;
  started: boolean;
  bootSource?: { kernel_image_path: string; initrd_path?: string; boot_args?: string };
  machine: { vcpu_count: number; mem_size_mib: number; smt: boolean };
  drives: Map<string, Record<string, unknown>>;
  interfaces: Map<string, Record<string, unknown>>;
  vsock?: { guest_cid: number; uds_path: string };
  vsockServer?: net.Server;
  apiSock: string;
  guest?: QemuBackedGuest;
}

/** Under the fake jailer, paths Firecracker is given are inside its chroot. */
const CHROOT = process.env.FAKE_FIRECRACKER_CHROOT;
function inRoot(p: string): string {
  return CHROOT ? `./${p.replace(/^\/+/, '')}` : p;
}

/** Whether this process's network namespace has `dev` (/sys/class/net shows the namespace sysfs was mounted in). */
function interfaceExists(dev: string): boolean {
  return fs.readFileSync('/proc/self/net/dev', 'utf8').split('\n').some((l) => l.trim().startsWith(`${dev}:`));
}

function mustOpen(file: string, what: string): void {
  try {
    fs.closeSync(fs.openSync(inRoot(file), 'r'));
  } catch (err) {
    throw new Fault(`${what}: ${(err as Error).message}`);
  }
}

function apply(state: VmState, method: string, template: string, params: Record<string, string>, body: Record<string, unknown>, shutdown: () => void): unknown {
  const op = `${method} ${template}`;
  if (state.started && PRE_BOOT.has(op)) throw new Fault(NOT_AFTER_START);
  if (!state.started && POST_BOOT.has(op)) throw new Fault(NOT_BEFORE_START);
  switch (op) {
    case 'GET /':
      return { id: state.id, state: state.started ? 'Running' : 'Not started', vmm_version: FAKE_FIRECRACKER_VERSION, app_name: 'Firecracker' };
    case 'GET /version':
      return { firecracker_version: FAKE_FIRECRACKER_VERSION };
    case 'GET /machine-config':
      return state.machine;
    case 'PUT /machine-config': {
      const m = body as VmState['machine'];
      if (m.mem_size_mib === 0) throw new Fault('The memory size (MiB) is invalid.');
      if (m.smt && m.vcpu_count > 1 && m.vcpu_count % 2 !== 0) throw new Fault('The vCPU number is invalid! The vCPU number can only be 1 or an even number when SMT is enabled.');
      state.machine = { ...m, smt: m.smt ?? false };
      return undefined;
    }
    case 'PUT /boot-source': {
      const b = body as NonNullable<VmState['bootSource']>;
      mustOpen(b.kernel_image_path, 'Cannot open kernel image');
      if (b.initrd_path) mustOpen(b.initrd_path, 'Cannot open initrd image');
      state.bootSource = b;
      return undefined;
    }
    case 'PUT /drives/{drive_id}': {
      if (body.drive_id !== params.drive_id) throw new Fault('The id from the path does not match the id from the body!');
      if (typeof body.path_on_host === 'string') mustOpen(body.path_on_host, 'Unable to open the block device backing file');
      if (body.is_root_device === true && [...state.drives.values()].some((d) => d.is_root_device === true && d.drive_id !== body.drive_id)) {
        throw new Fault('A root block device already exists!');
      }
      state.drives.set(params.drive_id!, body);
      return undefined;
    }
    case 'PUT /network-interfaces/{iface_id}': {
      if (body.iface_id !== params.iface_id) throw new Fault('The id from the path does not match the id from the body!');
      const dev = String(body.host_dev_name);
      if (dev.length > 15 || !interfaceExists(dev)) throw new Fault(`Open tap device failed: Error while creating ifreq structure: Invalid TUN/TAP Backend provided by ${dev}.`);
      state.interfaces.set(params.iface_id!, body);
      return undefined;
    }
    case 'PUT /vsock':
      state.vsock = body as NonNullable<VmState['vsock']>;
      return undefined;
    case 'PUT /actions':
      return action(state, String(body.action_type), shutdown);
    default:
      // Valid by the schema but not modelled here: accepted, as Firecracker would for a valid request.
      return undefined;
  }
}

let bootsGuest = false;

function action(state: VmState, type: string, shutdown: () => void): undefined {
  if (type === 'InstanceStart') {
    if (state.started) throw new Fault(NOT_AFTER_START);
    if (!state.bootSource) throw new Fault('Cannot start microvm without kernel configuration.');
    if (state.vsock) {
      if (fs.existsSync(inRoot(state.vsock.uds_path))) throw new Fault(`Cannot create backend for vsock device: UnixBind(Os { code: 98, kind: AddrInUse, message: "Address in use" })`);
      state.vsockServer = listenVsock(inRoot(state.vsock.uds_path), (socket, port) => {
        if (state.guest) state.guest.connect(socket, port);
        else socket.destroy();
      });
    }
    if (bootsGuest) state.guest = bootGuest(state, shutdown);
    state.started = true;
  } else if (type === 'SendCtrlAltDel') {
    if (!state.started) throw new Fault(NOT_BEFORE_START);
    // The guest reacts to Ctrl+Alt+Del by rebooting, which ends a Firecracker VM.
    setTimeout(shutdown, 50);
  }
  return undefined;
}

/**
 * The host side of vsock: a `CONNECT <port>` line, then `onConnect` takes the socket (with any
 * bytes after the line put back). Without a booted guest nobody listens, so it is closed.
 */
function listenVsock(udsPath: string, onConnect: (socket: net.Socket, port: number) => void): net.Server {
  const server = net.createServer((s) => {
    let line = '';
    const onData = (c: Buffer) => {
      line += c.toString('latin1');
      const nl = line.indexOf('\n');
      if (nl < 0) {
        if (line.length > 64) s.destroy();
        return;
      }
      s.off('data', onData);
      const m = /^CONNECT (\d+)$/.exec(line.slice(0, nl));
      if (!m) { s.destroy(); return; }
      const rest = Buffer.from(line.slice(nl + 1), 'latin1');
      if (rest.length) s.unshift(rest);
      onConnect(s, Number(m[1]));
    };
    s.on('data', onData);
    s.on('error', () => undefined);
  });
  server.listen(udsPath);
  return server;
}

/** Boots the configured guest under QEMU; the fake exits when the guest does, as Firecracker does. */
function bootGuest(state: VmState, shutdown: () => void): QemuBackedGuest {
  const drives = [...state.drives.values()];
  const ordered = [...drives.filter((d) => d.is_root_device === true), ...drives.filter((d) => d.is_root_device !== true)];
  return new QemuBackedGuest({
    bootSource: state.bootSource!,
    machine: state.machine,
    drives: ordered.map((d) => ({ path_on_host: String(d.path_on_host), is_read_only: d.is_read_only === true })),
    interfaces: [...state.interfaces.values()].map((n) => ({ host_dev_name: String(n.host_dev_name), ...(typeof n.guest_mac === 'string' ? { guest_mac: n.guest_mac } : {}) })),
  }, bridgeSocketPath(state.apiSock), inRoot, shutdown);
}

function send(res: http.ServerResponse, status: number, body?: unknown): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, body === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function parseArgs(argv: string[]): { apiSock: string; id: string } | string {
  let apiSock: string | undefined;
  let id = 'anonymous-instance';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--api-sock') apiSock = argv[++i];
    else if (a === '--id') id = argv[++i] ?? '';
    else return `Found argument '${a}' which wasn't expected, or isn't valid in this context.`;
  }
  if (!apiSock) return 'the fake needs --api-sock';
  if (!/^[A-Za-z0-9-]{1,64}$/.test(id)) return `Invalid instance ID: ${id}`;
  return { apiSock, id };
}

export function main(argv: string[], options: { guest?: 'qemu' } = {}): void {
  bootsGuest = options.guest === 'qemu';
  if (argv[0] === '--version') {
    process.stdout.write(`Firecracker v${FAKE_FIRECRACKER_VERSION}\n`);
    return;
  }
  const args = parseArgs(argv);
  if (typeof args === 'string') {
    process.stderr.write(`${args}\n`);
    process.exit(1);
  }
  args.apiSock = inRoot(args.apiSock);
  if (fs.existsSync(args.apiSock)) {
    process.stderr.write(`Failed to open the API socket at: ${args.apiSock}. Check that it is not already used.\n`);
    process.exit(1);
  }
  const routes = loadRoutes();
  const requestLog = `${args.apiSock}.requests.jsonl`;
  const state: VmState = { id: args.id, started: false, machine: { vcpu_count: 1, mem_size_mib: 128, smt: false }, drives: new Map(), interfaces: new Map(), apiSock: args.apiSock };
  const shutdown = () => {
    state.vsockServer?.close();
    state.guest?.kill();
    process.exit(0);
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY_BYTES) chunks.push(c);
    });
    req.on('end', () => {
      const method = req.method ?? '';
      const urlPath = (req.url ?? '/').split('?')[0]!;
      const text = Buffer.concat(chunks).toString('utf8');
      fs.appendFileSync(requestLog, `${JSON.stringify({ method, path: urlPath, body: text })}\n`);
      try {
        if (size > MAX_BODY_BYTES) throw new Fault('Request payload is too large.');
        const route = routes.find((r) => r.pattern.test(urlPath));
        if (!route || !route.methods.has(method)) throw new Fault(`Invalid request method and/or path: ${method} ${urlPath}.`);
        const m = route.pattern.exec(urlPath)!;
        const params: Record<string, string> = {};
        route.names.forEach((n, i) => { params[n] = decodeURIComponent(m[i + 1]!); });
        const validate = route.methods.get(method)!;
        let body: Record<string, unknown> = {};
        if (validate) {
          try {
            body = JSON.parse(text) as Record<string, unknown>;
          } catch (err) {
            throw new Fault(`An error occurred when deserializing the json body of a request: ${(err as Error).message}.`);
          }
          if (!validate(body)) throw new Fault(`An error occurred when deserializing the json body of a request: ${(validate.errors ?? []).map((e) => `${e.instancePath || 'body'} ${e.message}`).join('; ')}.`);
        }
        const answer = apply(state, method, route.template, params, body, shutdown);
        send(res, answer === undefined ? 204 : 200, answer);
      } catch (err) {
        if (!(err instanceof Fault)) throw err;
        send(res, err.status, { fault_message: err.message });
      }
    });
  });
  server.listen(args.apiSock);
  process.stdout.write(`Running Firecracker v${FAKE_FIRECRACKER_VERSION} (fake) as ${args.id}\n`);
  process.on('SIGTERM', shutdown);
}
