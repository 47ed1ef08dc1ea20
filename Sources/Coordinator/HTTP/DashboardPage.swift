/// `GET /`: the dashboard, one self-contained page (no external scripts, fonts or styles, so it works on
/// an offline render farm). It polls `/api/status` every second and draws: the batch's progress, the
/// workers with their slots and heartbeat age, each provider budget's use against its limit over time,
/// the episodes with state and attempt (of a big batch, those `/api/status` lists: in flight, latest
/// finished, next queued), a timeline of the episodes per worker, and (`coordinator serve`)
/// the batches: queued, running and finished, with links to their reports.
enum DashboardPage {
    static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Reelfarm</title>
        <link rel="icon" href="data:,">
        <style>
          :root { --bg:#0f1115; --panel:#171a21; --text:#e6e6e6; --dim:#8b93a1; --ok:#3fb950; --bad:#f85149;
                  --run:#58a6ff; --save:#d29922; --wait:#30363d; }
          body { margin:0; font:14px/1.4 system-ui, sans-serif; background:var(--bg); color:var(--text); }
          header { padding:12px 20px; display:flex; gap:20px; align-items:baseline; border-bottom:1px solid #222; }
          h1 { font-size:18px; margin:0; } h2 { font-size:14px; margin:0 0 8px; color:var(--dim); font-weight:600; }
          main { display:grid; grid-template-columns:repeat(auto-fit, minmax(420px, 1fr)); gap:16px; padding:16px 20px; }
          section { background:var(--panel); border-radius:8px; padding:12px 14px; overflow:auto; }
          .wide { grid-column:1 / -1; }
          .bar { height:14px; background:var(--wait); border-radius:7px; overflow:hidden; display:flex; }
          .bar span { display:block; height:100%; }
          table { border-collapse:collapse; width:100%; } td, th { padding:3px 8px; text-align:left; white-space:nowrap; }
          th { color:var(--dim); font-weight:500; border-bottom:1px solid #2a2f3a; }
          .succeeded { color:var(--ok); } .failed { color:var(--bad); } .running { color:var(--run); }
          .saving { color:var(--save); } .pending { color:var(--dim); }
          #stats span { margin-right:14px; } #state { color:var(--dim); }
          svg text { fill:var(--dim); font-size:11px; }
        </style>
        </head>
        <body>
        <header><h1>Reelfarm</h1><span id="batch"></span><span id="state"></span></header>
        <main>
          <section class="wide"><h2>Progress</h2><div class="bar" id="bar"></div><p id="stats"></p></section>
          <section><h2>Workers</h2><table><thead><tr><th>worker</th><th>host</th><th>running / slots</th>
            <th>done</th><th>heartbeat</th></tr></thead><tbody id="workers"></tbody></table></section>
          <section><h2>Provider budgets (calls in the current window against the limit)</h2>
            <table><thead><tr><th>provider</th><th>use</th><th>waiting</th><th>granted</th><th>429s</th><th>configured</th><th>learned</th></tr></thead>
            <tbody id="budgets"></tbody></table><svg id="budgetChart" width="100%" height="120"></svg></section>
          <section class="wide"><h2>Timeline (episodes per worker)</h2><svg id="timeline" width="100%" height="60"></svg></section>
          <section class="wide" id="batchesSection" hidden><h2>Batches</h2><table><thead><tr><th>batch</th><th>state</th>
            <th>episodes</th><th>succeeded</th><th>failed</th><th>submitted</th><th>finished</th></tr></thead>
            <tbody id="batches"></tbody></table></section>
          <section class="wide"><h2>Episodes <span id="episodeNote"></span></h2><table><thead><tr><th>episode</th><th>state</th><th>attempt</th>
            <th>worker</th><th>started</th><th>ended</th></tr></thead><tbody id="episodes"></tbody></table></section>
        </main>
        <script>
        "use strict";
        const history = {};   // provider -> [{t, use}]
        // With an API token (the page was opened as /?token=…), every request carries it on.
        const token = new URLSearchParams(location.search).get("token");
        const auth = token ? "?token=" + encodeURIComponent(token) : "";
        const colors = ["#58a6ff", "#d29922", "#3fb950", "#bc8cff", "#f85149"];
        const el = (id) => document.getElementById(id);
        const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;","\"":"&quot;"}[c]));
        const secs = (s) => s == null ? "–" : s < 60 ? s.toFixed(1) + " s" : Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
        function render(s) {
          el("batch").textContent = s.batch_id ? "batch " + s.batch_id : "no batch running";
          el("state").textContent = s.state + (s.disk_full ? " · ⚠ DISK FULL: storing and dispatch paused for " + Math.round(s.disk_full.paused_for_seconds) + " s (" + s.disk_full.error + "); workers keep their files, retried every 5 s" : "") + " · updated " + new Date(s.updated_at).toLocaleTimeString();
          const p = s.progress, total = Math.max(1, p.total);
          el("bar").innerHTML = [["succeeded","var(--ok)"],["failed","var(--bad)"],["saving","var(--save)"],["running","var(--run)"]]
            .map(([k, c]) => `<span style="width:${100 * p[k] / total}%;background:${c}" title="${k}"></span>`).join("");
          el("stats").innerHTML = `<span class="succeeded">${p.succeeded}/${p.total} done</span><span class="failed">${p.failed} failed</span>`
            + `<span class="running">${p.running} running</span><span class="saving">${p.saving} saving</span>`
            + `<span class="pending">${p.pending} pending</span><span>elapsed ${secs(p.elapsed_seconds)}</span><span>ETA ${secs(p.eta_seconds)}</span>`
            + (s.spend ? `<span id="spend">spent ${esc(s.spend.total)}${s.spend.cap ? ` of the ${esc(s.spend.cap)} cap` : ""}${s.spend.unpriced_calls ? ` (+ ${s.spend.unpriced_calls} unpriced calls)` : ""}${s.spend.reused_calls ? `; ${esc(s.spend.saved)} saved by ${s.spend.reused_calls} reused calls` : ""}</span>` : "");
          el("workers").innerHTML = s.workers.map((w) => `<tr><td>${esc(w.id)}${w.draining ? " (draining)" : ""}</td><td>${esc(w.host)}</td>`
            + `<td>${w.running} / ${w.slots}</td><td>${w.completed}</td><td>${(w.heartbeat_age_ms / 1000).toFixed(1)} s</td></tr>`).join("")
            || `<tr><td colspan="5" class="pending">no workers connected</td></tr>`;
          const now = Date.now() / 1000;
          el("budgets").innerHTML = s.budgets.map((b) => {
            (history[b.provider] ??= []).push({ t: now, use: b.limit ? b.in_window / b.limit : 0 });
            if (history[b.provider].length > 300) history[b.provider].shift();
            const r429 = Object.entries(b.signals).filter(([k]) => k.includes("limited")).reduce((a, [, n]) => a + n, 0);
            return `<tr><td>${esc(b.provider)}${b.paused ? " (paused)" : ""}</td><td>${b.in_window} / ${b.limit ?? "∞"}</td>`
              + `<td>${b.waiting}</td><td>${b.granted}</td><td>${r429}</td>`
              + `<td>${esc(b.configured ?? "–")}</td><td>${esc(b.learned ?? "–")}</td></tr>`;
          }).join("") || `<tr><td colspan="7" class="pending">no budgets set</td></tr>`;
          drawBudgets(now);
          drawTimeline(s);
          const batches = s.batches ?? [];
          el("batchesSection").hidden = batches.length === 0 && s.mode !== "serve";
          const when = (t) => t ? new Date(t).toLocaleTimeString() : "–";
          el("batches").innerHTML = batches.slice().reverse().map((b) => `<tr><td>${b.report
              ? `<a href="api/batches/${encodeURIComponent(b.id)}/report${auth}" style="color:inherit">${esc(b.id)}</a>` : esc(b.id)}</td>`
            + `<td class="${b.state === "completed" ? "succeeded" : b.state === "running" ? "running" : "pending"}">${esc(b.state)}${b.position ? " #" + b.position : ""}</td>`
            + `<td>${b.episodes}</td><td>${b.succeeded}</td><td>${b.failed}</td><td>${when(b.submitted_at)}</td><td>${when(b.finished_at)}</td></tr>`).join("")
            || `<tr><td colspan="7" class="pending">no batches yet: coordinator submit --episodes N</td></tr>`;
          const list = s.episode_list;
          el("episodeNote").textContent = list && list.listed < list.total
            ? `(${list.listed} of ${list.total}: in flight, latest finished, next queued)` : "";
          el("episodes").innerHTML = s.episodes.map((e) => `<tr><td>${esc(e.id)}</td><td class="${esc(e.status)}">${esc(e.status)}</td>`
            + `<td>${e.attempts}</td><td>${esc(e.worker)}</td><td>${secs(e.dispatched_after_seconds)}</td><td>${secs(e.finished_after_seconds)}</td></tr>`).join("");
        }
        function drawBudgets(now) {
          const svg = el("budgetChart"), w = svg.clientWidth || 400, h = 120, span = 120;
          let out = `<line x1="0" x2="${w}" y1="20" y2="20" stroke="#f85149" stroke-dasharray="4 3"/><text x="4" y="14">limit</text>`;
          Object.entries(history).forEach(([provider, points], i) => {
            const path = points.filter((p) => now - p.t <= span)
              .map((p) => `${(w * (1 - (now - p.t) / span)).toFixed(1)},${(h - 10 - (h - 30) * Math.min(1.2, p.use)).toFixed(1)}`).join(" ");
            out += `<polyline fill="none" stroke="${colors[i % colors.length]}" stroke-width="2" points="${path}"/>`
              + `<text x="${60 + 70 * i}" y="14" style="fill:${colors[i % colors.length]}">${esc(provider)}</text>`;
          });
          svg.innerHTML = out;
        }
        function drawTimeline(s) {
          // One lane per episode running at once on a worker (its slots), episodes laid out greedily.
          const svg = el("timeline"), w = svg.clientWidth || 800, now = s.progress.elapsed_seconds ?? 1;
          const end = Math.max(1, now, ...s.episodes.map((e) => e.finished_after_seconds ?? 0));
          const workers = [...new Set(s.episodes.filter((e) => e.worker).map((e) => e.worker))].sort();
          const rowH = 16, left = 130, scale = (t) => left + (w - left - 10) * t / end;
          let out = "", row = 0;
          workers.forEach((name) => {
            const lanes = [];
            s.episodes.filter((e) => e.worker === name && e.dispatched_after_seconds != null)
              .sort((a, b) => a.dispatched_after_seconds - b.dispatched_after_seconds).forEach((e) => {
                const t0 = e.dispatched_after_seconds, t1 = e.finished_after_seconds ?? now;
                let lane = lanes.findIndex((last) => last <= t0 + 1e-3);
                if (lane < 0) { lane = lanes.length; lanes.push(0); }
                lanes[lane] = t1;
                const y = 10 + (row + lane) * rowH;
                const color = { succeeded: "#3fb950", failed: "#f85149", saving: "#d29922" }[e.status] ?? "#58a6ff";
                out += `<rect x="${scale(t0).toFixed(1)}" y="${y}" width="${Math.max(2, scale(t1) - scale(t0)).toFixed(1)}" height="${rowH - 3}" rx="3" fill="${color}" opacity="0.85"><title>${esc(e.id)} (attempt ${e.attempts})</title></rect>`;
              });
            out += `<text x="4" y="${10 + row * rowH + 11}">${esc(name)}</text>`;
            row += Math.max(1, lanes.length);
          });
          svg.setAttribute("height", Math.max(40, 20 + row * rowH));
          svg.innerHTML = out;
        }
        async function poll() {
          try {
            const r = await fetch("api/status" + auth, { cache: "no-store" });
            if (r.ok) render(await r.json());
          } catch (e) {
            el("state").textContent = "coordinator unreachable (batch over?)";
          }
          setTimeout(poll, 1000);
        }
        poll();
        </script>
        </body>
        </html>
        """#
}
