import type { JobSpec } from '@sandfleet/db';

/**
 * A job with one step that does nothing (`true`), as `POST /api/jobs` stores
 * `{ "dockerSteps": [{ "image": "x", "commands": ["true"] }] }`: what queue tests and benches put
 * into the database directly when only the queue's behaviour matters.
 */
export const NO_OP_SPEC: JobSpec = Object.freeze({
  repositoryName: '',
  repositoryDirectory: '',
  commit: '',
  fetchTags: false,
  shallowClone: false,
  sparseCheckout: null,
  files: {},
  dockerSteps: [{ image: 'x', commands: ['true'], dir: '' }],
  cliSteps: null,
  redactedValues: null,
  dockerAuthConfig: null,
});
