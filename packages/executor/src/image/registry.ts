import { BlockedAddressError, NameResolutionError, type RegistryAddressPolicy } from './address-policy.js';
import { basicHeader, parseChallenge, type BasicCredentials } from './auth.js';
import { SandfleetError } from '@sandfleet/protocol';
import { ImageLimitError, MAX_TOKEN_RESPONSE_BYTES } from './limits.js';
import { RedirectError, readLimited, registryGet } from './registry-http.js';

/** A pull failed; the message names the image and the registry it was pulled from. */
export class ImagePullError extends SandfleetError {
  constructor(readonly image: string, readonly registry: string, detail: string, options?: { cause?: unknown; status?: number }) {
    super(`cannot pull ${image} from ${registry}: ${detail}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.status = options?.status;
  }
  readonly status: number | undefined;
}

export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/**
 * One registry endpoint (the image's own registry or a mirror) for one repository. It answers the
 * v2 auth dance lazily: the first 401 tells whether to send Basic credentials or to fetch a Bearer
 * token from the challenge's realm (with the Basic credentials, when we have them).
 */
export class RegistryEndpoint {
  private authorization: string | undefined;

  constructor(
    readonly baseUrl: string,
    readonly repository: string,
    private readonly credentials: BasicCredentials | undefined,
    /** For messages: `pulling X from <label>`. */
    readonly label: string,
    private readonly image: string,
    private readonly policy: RegistryAddressPolicy,
  ) {}

  /** GET `/v2/<repository>/<suffix>`; retries once with credentials after a 401 challenge. */
  async get(suffix: string, headers: Record<string, string>, signal: AbortSignal): Promise<Response> {
    const url = `${this.baseUrl}/v2/${this.repository}/${suffix}`;
    let response = await this.fetch(url, headers, signal);
    if (response.status === 401) {
      const challenge = parseChallenge(response.headers.get('www-authenticate'));
      await response.body?.cancel();
      await this.authenticate(challenge, signal);
      response = await this.fetch(url, headers, signal);
      if (response.status === 401) {
        await response.body?.cancel();
        throw new ImagePullError(this.image, this.label, this.credentials
          ? `the registry rejected the credentials for user "${this.credentials.username}" (HTTP 401)`
          : 'the registry requires authentication and no credentials are configured for it (HTTP 401; set dockerAuthConfig or EXECUTOR_DOCKER_AUTH_CONFIG)', { status: 401 });
      }
    }
    return response;
  }

  private async fetch(url: string, headers: Record<string, string>, signal: AbortSignal): Promise<Response> {
    const all: Record<string, string> = { ...headers };
    if (this.authorization) all.authorization = this.authorization;
    try {
      return await registryGet(this.policy, new URL(url), all, signal);
    } catch (err) {
      if (signal.aborted) throw err;
      if (isRefusal(err)) throw new ImagePullError(this.image, this.label, err.message, { cause: err });
      throw new ImagePullError(this.image, this.label, `registry unreachable (${err instanceof Error ? err.message : String(err)})`, { cause: err });
    }
  }

  private async authenticate(challenge: ReturnType<typeof parseChallenge>, signal: AbortSignal): Promise<void> {
    if (challenge?.scheme === 'basic') {
      if (!this.credentials) {
        throw new ImagePullError(this.image, this.label, 'the registry requires authentication and no credentials are configured for it (HTTP 401; set dockerAuthConfig or EXECUTOR_DOCKER_AUTH_CONFIG)', { status: 401 });
      }
      this.authorization = basicHeader(this.credentials);
      return;
    }
    if (challenge?.scheme !== 'bearer' || !challenge.params.realm) {
      throw new ImagePullError(this.image, this.label, 'HTTP 401 without a usable WWW-Authenticate challenge', { status: 401 });
    }
    let tokenUrl: URL;
    try {
      tokenUrl = new URL(challenge.params.realm);
    } catch {
      throw new ImagePullError(this.image, this.label, 'HTTP 401 with an invalid token realm', { status: 401 });
    }
    if (tokenUrl.protocol !== 'https:' && tokenUrl.protocol !== 'http:') {
      throw new ImagePullError(this.image, this.label, 'HTTP 401 with a token realm that is not http(s)', { status: 401 });
    }
    if (challenge.params.service) tokenUrl.searchParams.set('service', challenge.params.service);
    tokenUrl.searchParams.set('scope', challenge.params.scope ?? `repository:${this.repository}:pull`);
    const headers: Record<string, string> = {};
    if (this.credentials) headers.authorization = basicHeader(this.credentials);
    let response: Response;
    try {
      response = await registryGet(this.policy, tokenUrl, headers, signal);
    } catch (err) {
      if (signal.aborted) throw err;
      if (isRefusal(err)) throw new ImagePullError(this.image, this.label, `token realm refused: ${err.message}`, { cause: err });
      throw new ImagePullError(this.image, this.label, `token service ${tokenUrl.origin} unreachable`, { cause: err });
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new ImagePullError(this.image, this.label, response.status === 401 || response.status === 403
        ? `the token service ${tokenUrl.origin} rejected the credentials${this.credentials ? ` for user "${this.credentials.username}"` : ''} (HTTP ${response.status})`
        : `token service ${tokenUrl.origin} answered HTTP ${response.status}`, { status: response.status });
    }
    // Never echo the body: it comes from whoever the realm named.
    let body: { token?: unknown; access_token?: unknown };
    try {
      body = JSON.parse((await readLimited(response, MAX_TOKEN_RESPONSE_BYTES, 'the token response')).toString('utf8')) as typeof body;
    } catch (err) {
      if (err instanceof ImageLimitError) throw new ImagePullError(this.image, this.label, `token service ${tokenUrl.origin}: ${err.message}`);
      throw new ImagePullError(this.image, this.label, `token service ${tokenUrl.origin} returned an invalid response (HTTP ${response.status})`);
    }
    const token = typeof body?.token === 'string' ? body.token : typeof body?.access_token === 'string' ? body.access_token : undefined;
    if (!token) throw new ImagePullError(this.image, this.label, `token service ${tokenUrl.origin} returned no token`);
    this.authorization = `Bearer ${token}`;
  }
}

/** A refusal with a fixed, safe message (it never carries a response body). */
function isRefusal(err: unknown): err is Error {
  return err instanceof BlockedAddressError || err instanceof NameResolutionError || err instanceof RedirectError || err instanceof ImageLimitError;
}
