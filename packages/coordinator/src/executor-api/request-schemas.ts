import { z } from 'zod';
import {
  AddExecutionLogEntryRequest,
  AppendExecutionLogRequest,
  MarkCompleteRequest,
  MarkErroredRequest,
  UpdateExecutionLogEntryRequest,
} from '@sandfleet/protocol';
import { Int32, INT32_MAX, RowId } from '../http/ids.js';

/**
 * The protocol's request schemas with the ranges the database can store: a number past them is a
 * 400 naming the field, not a failed SQL cast. Durations are clamped by the store (db logs.ts).
 */
const Duration = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const ranges = {
  jobId: RowId,
  exitCode: Int32.nullish(),
  durationMs: Duration.nullish(),
};

export const AddLogEntryBody = AddExecutionLogEntryRequest.extend(ranges);
export const UpdateLogEntryBody = UpdateExecutionLogEntryRequest.extend({ ...ranges, entryId: Int32 });
// The store numbers appended chunks from seq + 1.
export const AppendLogBody = AppendExecutionLogRequest.extend({ ...ranges, entryId: Int32, seq: z.number().int().nonnegative().max(INT32_MAX - 1) });
export const MarkCompleteBody = MarkCompleteRequest.extend({ jobId: RowId });
export const MarkErroredBody = MarkErroredRequest.extend({ jobId: RowId });
