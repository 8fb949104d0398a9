// Follows a job's log over Server-Sent Events. The server sends rendered, escaped HTML fragments;
// event ids (repeated as `cursor` in the data) are the log cursor. An event at or below the last
// cursor already shown is skipped, and a
// reconnect resumes after that id (the browser's Last-Event-ID, or ?after= when reopened here), so
// neither a dropped connection nor a reload shows a line twice or loses one.
//
// Each entry shows at most its data-limit bytes of output: live output past it is not appended
// (the entry switches to "show more"), and "show more" reads the next bytes from the server.
(function () {
  const log = document.getElementById('log');
  if (!log) return;
  const entries = document.getElementById('log-entries');

  function fragment(html) {
    const template = document.createElement('template');
    template.innerHTML = html;
    return template.content.firstElementChild;
  }
  function kib(bytes) {
    return bytes < 1024 * 1024 ? Math.round(bytes / 1024) + ' KiB' : (bytes / 1024 / 1024).toFixed(1) + ' MiB';
  }
  function moreOf(out) {
    return out.closest('.entry').querySelector('.more');
  }
  function cutOff(out, shown) {
    out.dataset.truncated = 'true';
    const more = moreOf(out);
    more.querySelector('.show-more').dataset.offset = String(shown);
    more.hidden = false;
  }

  entries.addEventListener('click', function (event) {
    const button = event.target.closest('.show-more');
    if (!button) return;
    const out = button.closest('.entry').querySelector('pre.out');
    button.disabled = true;
    fetch(button.dataset.href + '?offset=' + button.dataset.offset, { credentials: 'same-origin' })
      .then(function (response) {
        if (!response.ok) throw new Error('HTTP ' + response.status);
        return response.json();
      })
      .then(function (page) {
        if (page.html) out.append(fragment(page.html));
        button.dataset.offset = String(page.nextOffset);
        out.dataset.shownBytes = String(page.nextOffset);
        const size = button.parentElement.querySelector('.more-size');
        if (size) size.textContent = kib(page.nextOffset) + ' of ' + kib(page.totalBytes) + ' shown';
        button.hidden = page.nextOffset >= page.totalBytes && log.dataset.live === 'ended';
      })
      .catch(function (err) {
        const size = button.parentElement.querySelector('.more-size');
        if (size) size.textContent = 'could not load more: ' + err.message;
      })
      .finally(function () {
        button.disabled = false;
      });
  });

  if (!log.dataset.events) return;
  let cursor = Number(log.dataset.cursor || 0);
  let source;

  // The cursor comes in the data, not from event.lastEventId: an event without an id (a step
  // announced right before its first output) carries the previous event's id there, and would look
  // like a repeat.
  function fresh(data) {
    if (data.cursor === undefined) return true;
    if (data.cursor <= cursor) return false;
    cursor = data.cursor;
    log.dataset.cursor = String(cursor);
    return true;
  }
  function onEntry(event) {
    const data = JSON.parse(event.data);
    if (!fresh(data)) return;
    const block = fragment(data.html);
    const existing = document.getElementById(block.id);
    if (existing) existing.querySelector('.entry-head').replaceWith(block.querySelector('.entry-head'));
    else entries.append(block);
  }
  function onOutput(event) {
    const data = JSON.parse(event.data);
    if (!fresh(data)) return;
    const out = document.getElementById('out-' + data.entry);
    if (!out) return;
    if (data.replaces) {
      out.replaceChildren();
      out.dataset.shownBytes = '0';
      out.dataset.truncated = 'false';
      moreOf(out).hidden = true;
    }
    if (out.dataset.truncated === 'true') return;
    const shown = Number(out.dataset.shownBytes || 0);
    if (shown + data.bytes > Number(out.dataset.limit)) {
      cutOff(out, shown);
      return;
    }
    out.dataset.shownBytes = String(shown + data.bytes);
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
