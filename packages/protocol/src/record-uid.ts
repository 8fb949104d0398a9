/**
 * The ID a heartbeat carries for a job: `"<id>"` from a single-queue dequeue, `"<id>-<queue>"` from a
 * multi-queue one, where job IDs of different queues may collide.
 */
export function recordUid(job: { id: number; queue?: string | undefined }): string {
  return job.queue ? `${job.id}-${job.queue}` : String(job.id);
}

/** Splits on the first `-`, as Sourcegraph's `ParseJobIDs` does. Undefined when the ID is not numeric. */
export function parseRecordUid(uid: string): { id: number; queue?: string } | undefined {
  const dash = uid.indexOf('-');
  const idText = dash === -1 ? uid : uid.slice(0, dash);
  if (!/^\d+$/.test(idText)) return undefined;
  const id = Number(idText);
  return dash === -1 ? { id } : { id, queue: uid.slice(dash + 1) };
}

/**
 * The `jobIdsByQueue` of a multi-queue heartbeat: `<id>-<queue>` uids grouped by queue, queues sorted.
 * Uids without a queue cannot be routed and are left out.
 */
export function groupRecordUidsByQueue(uids: readonly string[]): { queueName: string; jobIds: string[] }[] {
  const byQueue = new Map<string, string[]>();
  for (const uid of uids) {
    const parsed = parseRecordUid(uid);
    if (!parsed?.queue) continue;
    byQueue.set(parsed.queue, [...(byQueue.get(parsed.queue) ?? []), String(parsed.id)]);
  }
  return [...byQueue.keys()].sort().map((queueName) => ({ queueName, jobIds: byQueue.get(queueName)! }));
}
