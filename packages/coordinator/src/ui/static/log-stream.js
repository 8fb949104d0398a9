// Follows a job's log over Server-Sent Events. The server sends rendered, escaped HTML fragments;
// event ids are the log cursor. An event at or below the last id already shown is skipped, and a
// reconnect resumes after that id (the browser's Last-Event-ID, or ?after= when reopened here), so
// neither a dropped connection nor a reload shows a line twice or loses one.
(function () {
  const log = document.getElementById('log');
  if (!log || !log.dataset.events) return;
  const entries = document.getElementById('log-entries');
  let cursor = Number(log.dataset.cursor || 0);
  let source;

  function fragment(html) {
    const template = document.createElement('template');
    template.innerHTML = html;
    return template.content.firstElementChild;
  }
  function fresh(event) {
    if (!event.lastEventId) return true;
    const id = Number(event.lastEventId);
    if (id <= cursor) return false;
    cursor = id;
    log.dataset.cursor = String(cursor);
    return true;
  }
  function onEntry(event) {
    if (!fresh(event)) return;
    const data = JSON.parse(event.data);
    const block = fragment(data.html);
    const existing = document.getElementById(block.id);
    if (existing) existing.querySelector('.entry-head').replaceWith(block.querySelector('.entry-head'));
    else entries.append(block);
  }
  function onOutput(event) {
    if (!fresh(event)) return;
    const data = JSON.parse(event.data);
    const out = document.getElementById('out-' + data.entry);
    if (!out) return;
    if (data.replaces) out.replaceChildren();
    const stick = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
    out.append(fragment(data.html));
    if (stick) out.scrollTop = out.scrollHeight;
  }
  function onState(event) {
    const data = JSON.parse(event.data);
    document.getElementById('job-state').replaceWith(fragment(data.html));
    if (data.final) document.querySelectorAll('.cancel-form').forEach((f) => f.remove());
  }
  function connect() {
    source = new EventSource(log.dataset.events + '?after=' + cursor);
    source.addEventListener('entry', onEntry);
    source.addEventListener('output', onOutput);
    source.addEventListener('state', onState);
    source.addEventListener('end', function () {
      source.close();
      log.dataset.live = 'ended';
    });
    source.onopen = function () { log.dataset.live = 'open'; };
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) setTimeout(connect, 2000);
    };
  }
  connect();
})();
