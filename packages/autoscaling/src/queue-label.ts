/**
 * The queue label of a multi-queue metric: the queue names sorted and joined by `_`
 * (e.g. `batches_codeintel`), the string the Terraform modules compute too.
 */
export function formatQueueNamesForMetrics(queues: readonly string[]): string {
  return [...queues].sort().join('_');
}
