/** @jsxImportSource hono/jsx */
import { JOB_STATES, type JobState } from '@sandfleet/protocol';
import { StateBadge } from './jobs.js';

export function QueuesPage(props: { queues: Array<{ name: string; counts: Record<JobState, number> }> }) {
  return (
    <>
      <h1>Queues</h1>
      <table>
        <thead>
          <tr>
            <th scope="col">Queue</th>
            {JOB_STATES.map((s) => (
              <th scope="col" class="num">
                <StateBadge state={s} />
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {props.queues.map((q) => (
            <tr class="queue" data-queue={q.name}>
              <th scope="row">
                <a href={`/jobs?queue=${encodeURIComponent(q.name)}`}>{q.name}</a>
              </th>
              {JOB_STATES.map((s) => (
                <td class="num" data-state={s}>
                  <a href={`/jobs?queue=${encodeURIComponent(q.name)}&state=${s}`}>{q.counts[s]}</a>
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
