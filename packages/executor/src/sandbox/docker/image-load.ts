import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import { Readable } from 'node:stream';
import { SandfleetError } from '@sandfleet/protocol';
import { hexOf } from '../../image/blob-store.js';
import type { ResolvedImage } from '../../image/pull.js';
import type { DockerCli } from './cli.js';

/**
 * Images reach dockerd through `docker load`, never `docker pull`: dockerd's own pulls follow a
 * registry's token realm and redirects to any address and have no size budgets, while our puller
 * applies the registry address policy, the image budgets, the job's credentials, the mirrors and
 * digest checks (pull.ts). The verified blobs are streamed to `docker load` on stdin as a
 * docker-archive (`manifest.json` naming the config and layer files), the format dockerd 20.10
 * and later accept; the daemon checks each layer against the config's diff_ids once more, and the
 * loaded image's id is the sha256 of the config we verified, which is checked after the load.
 * That holds for the daemon's classic image store (graph drivers such as overlay2, which the job
 * disk limit needs anyway); a daemon on the containerd image store names images differently and
 * fails that check with an error rather than running something unverified.
 */
export class ImageLoadError extends SandfleetError {
  constructor(readonly image: string, detail: string) {
    super(`cannot load ${image} into the Docker daemon: ${detail}`);
  }
}

/** The image id (config digest) when the daemon has exactly that image, else undefined. */
export async function daemonImageId(cli: DockerCli, configDigest: string): Promise<string | undefined> {
  const r = await cli.try(['image', 'inspect', '--format', '{{.Id}}', configDigest]);
  return r.exitCode === 0 && r.stdout.trim() === configDigest ? configDigest : undefined;
}

/** Loads the image from its verified blobs (`layerPaths`, in the config's order) and checks what the daemon made of it. */
export async function loadImage(cli: DockerCli, image: ResolvedImage, layerPaths: readonly string[], signal: AbortSignal): Promise<void> {
  const stderr: Buffer[] = [];
  // A killed load leaves at most unreferenced layers in the daemon, which it reuses or prunes.
  const r = await cli.stream(['load', '--quiet'], { stdin: Readable.from(dockerArchive(image, layerPaths)), signal, onStderr: (c) => stderr.push(c) });
  signal.throwIfAborted();
  if (r.exitCode !== 0) throw new ImageLoadError(image.reference.canonical, `docker load failed (exit ${r.exitCode}): ${Buffer.concat(stderr).toString().trim().slice(-500) || '(no error output)'}`);
  if (!(await daemonImageId(cli, image.configDigest))) {
    throw new ImageLoadError(image.reference.canonical, `after docker load the daemon has no image with id ${image.configDigest} (the verified config digest)`);
  }
}

interface ArchiveFile {
  name: string;
  size: number;
  /** The content: bytes, or a blob file to stream. */
  data: Buffer | string;
}

/** The docker-archive tar: the blobs under `blobs/sha256/<hex>` (as `docker save` writes them) and manifest.json. */
async function* dockerArchive(image: ResolvedImage, layerPaths: readonly string[]): AsyncGenerator<Buffer> {
  const blobName = (digest: string) => `blobs/sha256/${hexOf(digest)}`;
  // A tag only labels the image for people listing the daemon's images: steps run by image id.
  const ref = image.reference;
  const repoTags = ref.tag && !ref.digest ? [`${ref.registry}/${ref.repository}:${ref.tag}`] : [];
  const manifest = Buffer.from(JSON.stringify([{ Config: blobName(image.configDigest), RepoTags: repoTags, Layers: image.layers.map((l) => blobName(l.digest)) }]));
  const files: ArchiveFile[] = [{ name: blobName(image.configDigest), size: (await fs.stat(image.configPath)).size, data: image.configPath }];
  const seen = new Set([image.configDigest]);
  for (const [i, layer] of image.layers.entries()) {
    if (seen.has(layer.digest)) continue; // an image may repeat a layer; the archive holds it once
    seen.add(layer.digest);
    files.push({ name: blobName(layer.digest), size: (await fs.stat(layerPaths[i]!)).size, data: layerPaths[i]! });
  }
  files.push({ name: 'manifest.json', size: manifest.length, data: manifest });
  yield directoryHeader('blobs/');
  yield directoryHeader('blobs/sha256/');
  for (const file of files) {
    yield tarHeader(file.name, file.size, '0', 0o644);
    let written = 0;
    if (Buffer.isBuffer(file.data)) {
      written = file.data.length;
      yield file.data;
    } else {
      for await (const chunk of createReadStream(file.data) as AsyncIterable<Buffer>) {
        written += chunk.length;
        if (written > file.size) break;
        yield chunk;
      }
    }
    // Blobs are content-addressed and never rewritten; a changed size is a broken store.
    if (written !== file.size) throw new Error(`${file.name} changed size while being loaded`);
    if (file.size % 512) yield Buffer.alloc(512 - (file.size % 512));
  }
  yield Buffer.alloc(1024);
}

function directoryHeader(name: string): Buffer {
  return tarHeader(name, 0, '5', 0o755);
}

/** A ustar header; sizes past the 11 octal digits (8 GiB) use the base-256 form Go's archive/tar reads. */
function tarHeader(name: string, size: number, type: '0' | '5', mode: number): Buffer {
  const h = Buffer.alloc(512);
  if (Buffer.byteLength(name) > 100) throw new Error(`tar name too long: ${name}`);
  h.write(name, 0, 100, 'utf8');
  h.write(`${mode.toString(8).padStart(7, '0')}\0`, 100, 8, 'ascii');
  h.write('0000000\0', 108, 8, 'ascii');
  h.write('0000000\0', 116, 8, 'ascii');
  if (size < 8 ** 11) {
    h.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 12, 'ascii');
  } else {
    h[124] = 0x80;
    let rest = BigInt(size);
    for (let i = 135; i > 124; i--, rest >>= 8n) h[i] = Number(rest & 0xffn);
  }
  h.write('00000000000\0', 136, 12, 'ascii');
  h.write(type, 156, 1, 'ascii');
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  h.fill(' ', 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return h;
}
