import Foundation
import Protocol
import Shared

/// `OUTPUT/<batch>/report.html`: the batch after the fact, one self-contained file (data and drawing code
/// inline, nothing fetched) to open from the output folder or attach to a ticket. It shows a warning at the
/// top when the batch is largely placeholders (``PlaceholderWarning``), the totals,
/// the episodes on a timeline per worker (a Gantt chart, one lane per slot), each provider's calls per
/// second against its limit, the failures and placeholders, and every episode with a link to its folder
/// and video.
enum BatchReport {
    /// One provider's calls started per second since the batch's first dispatch, and its limit per second.
    struct Rate: Encodable, Sendable, Equatable {
        var provider: String
        var limitPerSecond: Double?
        var limit: String
        /// `[second, calls]` pairs.
        var points: [[Int]]
    }

    struct Payload: Encodable {
        var summary: BatchSummary
        var rates: [Rate]
    }

    /// The rates the lease manager recorded, shifted to the batch's first dispatch.
    static func rates(from dispatcher: Dispatcher) -> [Rate] {
        let leases = dispatcher.leases
        guard let origin = leases.timelineOrigin else { return [] }
        let first = dispatcher.episodes.compactMap(\.firstDispatchedAt).min() ?? origin
        let shift = Int((origin - first).secondsDouble.rounded(.down))
        return leases.announcedBudgets.map { budget in
            let perSecond = leases.startsPerSecond[budget.provider] ?? [:]
            return Rate(
                provider: budget.provider,
                limitPerSecond: budget.requests.map { Double($0) * 1000 / Double(budget.requestWindowMs) },
                limit: LeaseManager.describe(budget),
                points: perSecond.keys.sorted().map { [$0 + shift, perSecond[$0]!] }
            )
        }
    }

    static func html(summary: BatchSummary, rates: [Rate]) -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(Payload(summary: summary, rates: rates))) ?? Data("{}".utf8)
        // Inside <script>, "</script" would end the element and "<!--" change how it is parsed: write
        // every "<" as the JSON escape \u003c, so no text from a batch file can become markup.
        let json = String(decoding: data, as: UTF8.self).replacingOccurrences(of: "<", with: "\\u003c")
        // The warning first: its text has no "__" left (escaped), so no later replacement reaches into it.
        return template.replacingOccurrences(of: "__WARNING__", with: warningSection(summary.placeholderWarning))
            .replacingOccurrences(of: "__DATA__", with: json)
            .replacingOccurrences(of: "__TITLE__", with: escape(summary.batchId))
    }

    static func write(summary: BatchSummary, rates: [Rate], to batchDir: URL) throws {
        let url = batchDir.appendingPathComponent("report.html")
        try Data(html(summary: summary, rates: rates).utf8).write(to: url, options: .atomic)
    }

    /// The banner at the top of the report when the batch is largely placeholders (empty otherwise), written
    /// here rather than by the page's script so it shows even where scripts do not run (a mail preview).
    static func warningSection(_ warning: PlaceholderWarning?) -> String {
        guard let warning else { return "" }
        func text(_ s: String) -> String { escape(s).replacingOccurrences(of: "_", with: "&#95;") }
        let percent = Int((warning.share * 100).rounded())
        let causes = warning.causes.map { cause in
            "<li><b>\(text(cause.stage))</b>: \(text(cause.reason)) <span class=\"dim\">(\(cause.count))</span></li>"
        }.joined()
        return """
            <section class="warning" id="placeholder-warning"><h2>⚠ \(warning.placeholders) of \(warning.assets) \
            assets (\(percent)%) are placeholders</h2><p>These episodes are largely offline stand-ins (drawn cards, \
            espeak voices) because provider calls failed. Most common causes:</p><ul>\(causes)</ul>\
            <p class="dim">Fix the cause, then rerun the batch; every placeholder is listed under \
            "Failures and placeholders".</p></section>
            """
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    private static let template = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Reelfarm report: __TITLE__</title>
        <link rel="icon" href="data:,">
        <style>
          body { margin:0; font:14px/1.4 system-ui, sans-serif; background:#fff; color:#1f2328; }
          header { padding:16px 24px; border-bottom:1px solid #d0d7de; } h1 { margin:0 0 4px; font-size:20px; }
          main { padding:8px 24px 32px; } h2 { font-size:16px; margin:24px 0 8px; }
          table { border-collapse:collapse; } td, th { padding:3px 10px; text-align:left; vertical-align:top; }
          th { border-bottom:1px solid #d0d7de; font-weight:600; }
          .succeeded { color:#1a7f37; } .failed, .unfinished { color:#cf222e; } .dim { color:#656d76; }
          .totals span { margin-right:18px; } svg text { font-size:11px; fill:#656d76; }
          .warning { margin:16px 0 8px; padding:10px 16px; border:2px solid #bf8700; border-radius:6px; background:#fff8c5; }
          .warning h2 { margin:4px 0 8px; color:#9a6700; } .warning ul { margin:4px 0; }
        </style>
        </head>
        <body>
        <header><h1 id="title"></h1><div class="totals" id="totals"></div></header>
        <main>
          __WARNING__
          <h2>Timeline (episodes per worker, one lane per slot)</h2><svg id="gantt" width="100%" height="60"></svg>
          <h2>Provider calls per second against the limit</h2><div id="rates"></div>
          <h2>Failures and placeholders</h2><div id="problems"></div>
          <h2>Episodes</h2>
          <table><thead><tr><th>episode</th><th>topic</th><th>status</th><th>attempts</th><th>worker</th>
            <th>started</th><th>ended</th><th>cost</th><th>files</th></tr></thead><tbody id="episodes"></tbody></table>
        </main>
        <script type="application/json" id="data">__DATA__</script>
        <script>
        "use strict";
        const data = JSON.parse(document.getElementById("data").textContent);
        const s = data.summary, el = (id) => document.getElementById(id);
        const esc = (v) => String(v ?? "").replace(/[&<>"]/g, (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;","\"":"&quot;"}[c]));
        const secs = (v) => v == null ? "–" : v.toFixed(1) + " s";
        const usd = (m) => m == null ? "–" : "$" + (m / 1e6).toFixed(m >= 1e6 ? 2 : 4);
        el("title").textContent = "Batch " + s.batch_id + ": " + s.status.replace(/_/g, " ");
        el("totals").innerHTML = `<span class="succeeded">${s.totals.succeeded}/${s.totals.episodes} succeeded</span>`
          + `<span class="failed">${s.totals.failed} failed</span><span>${s.totals.attempts} attempts</span>`
          + `<span>${s.totals.placeholders} placeholders</span><span>${s.totals.api_calls} API calls</span>`
          + (s.spend ? `<span id="spend" title="${s.spend.unpriced_calls} calls of models without a price are not counted">${usd(s.spend.total_micros)} spent`
            + `${s.spend.unpriced_calls ? ` (+ ${s.spend.unpriced_calls} unpriced calls)` : ""}`
            + `${s.spend.reused_calls ? `, <span id="saved">${usd(s.spend.saved_micros)} saved by ${s.spend.reused_calls} calls reused from the asset store</span>` : ""}</span>` : "")
          + `<span>${secs(s.wall_seconds)} wall</span><span>${s.workers_seen} workers</span><span class="dim">${esc(s.started_at)}</span>`;
        (function gantt() {
          const svg = el("gantt"), w = svg.clientWidth || 1000, left = 150, rowH = 16;
          const eps = s.episodes.filter((e) => e.worker && e.dispatched_after_seconds != null);
          const end = Math.max(1, ...eps.map((e) => e.finished_after_seconds ?? e.dispatched_after_seconds));
          const x = (t) => left + (w - left - 10) * t / end;
          let out = "", row = 0;
          [...new Set(eps.map((e) => e.worker))].sort().forEach((name) => {
            const lanes = [];
            eps.filter((e) => e.worker === name).sort((a, b) => a.dispatched_after_seconds - b.dispatched_after_seconds).forEach((e) => {
              const t0 = e.dispatched_after_seconds, t1 = e.finished_after_seconds ?? end;
              let lane = lanes.findIndex((last) => last <= t0 + 1e-3);
              if (lane < 0) { lane = lanes.length; lanes.push(0); }
              lanes[lane] = t1;
              const color = e.status === "succeeded" ? "#2da44e" : "#cf222e";
              out += `<rect x="${x(t0).toFixed(1)}" y="${10 + (row + lane) * rowH}" width="${Math.max(2, x(t1) - x(t0)).toFixed(1)}" height="${rowH - 3}" rx="3" fill="${color}" opacity="0.85"><title>${esc(e.id)}: ${secs(t0)} → ${secs(t1)}, attempts ${e.attempts}</title></rect>`;
            });
            out += `<text x="4" y="${10 + row * rowH + 11}">${esc(name)}</text>`;
            row += Math.max(1, lanes.length);
          });
          for (let t = 0; t <= end; t += Math.max(1, Math.ceil(end / 10))) out += `<text x="${x(t)}" y="${20 + row * rowH + 4}">${t}s</text>`;
          svg.setAttribute("height", 30 + row * rowH);
          svg.innerHTML = out;
        })();
        el("rates").innerHTML = data.rates.length ? "" : `<p class="dim">No budgets were set, so no call rates were counted (see --budget).</p>`;
        data.rates.forEach((r) => {
          const w = 1000, h = 110, end = Math.max(1, ...r.points.map((p) => p[0] + 1));
          const max = Math.max(1, r.limit_per_second ?? 0, ...r.points.map((p) => p[1])) * 1.15;
          const y = (v) => h - 16 - (h - 26) * v / max, bw = (w - 40) / end;
          let out = r.points.map(([t, n]) => `<rect x="${(30 + t * bw).toFixed(1)}" y="${y(n).toFixed(1)}" width="${Math.max(1, bw - 1).toFixed(1)}" height="${(h - 16 - y(n)).toFixed(1)}" fill="#0969da"><title>${t}s: ${n} calls</title></rect>`).join("");
          if (r.limit_per_second != null) out += `<line x1="30" x2="${w}" y1="${y(r.limit_per_second)}" y2="${y(r.limit_per_second)}" stroke="#cf222e" stroke-dasharray="5 3"/><text x="${w - 120}" y="${y(r.limit_per_second) - 4}">limit ${r.limit_per_second}/s</text>`;
          out += `<text x="0" y="12">${esc(r.provider)}</text><text x="30" y="${h - 2}">0s</text><text x="${w - 40}" y="${h - 2}">${end}s</text>`;
          el("rates").insertAdjacentHTML("beforeend", `<p class="dim">${esc(r.limit)}</p><svg viewBox="0 0 ${w} ${h}" width="100%" height="${h}">${out}</svg>`);
        });
        const problems = s.episodes.flatMap((e) => [
          ...e.errors.map((m) => `<tr><td>${esc(e.id)}</td><td class="failed">error</td><td>${esc(m)}</td></tr>`),
          ...e.placeholders.map((p) => `<tr><td>${esc(e.id)}</td><td>placeholder</td><td>${esc(p.stage)} ${esc(p.item)}: ${esc(p.reason)}</td></tr>`),
        ]);
        el("problems").innerHTML = problems.length ? `<table><thead><tr><th>episode</th><th>kind</th><th>what</th></tr></thead><tbody>${problems.join("")}</tbody></table>`
          : `<p class="dim">None: every attempt succeeded and no call needed a placeholder.</p>`;
        el("episodes").innerHTML = s.episodes.map((e) => `<tr><td>${esc(e.id)}</td><td>${esc(e.topic)}</td><td class="${esc(e.status)}">${esc(e.status)}</td>`
          + `<td>${e.attempts}</td><td>${esc(e.worker)}</td><td>${secs(e.dispatched_after_seconds)}</td><td>${secs(e.finished_after_seconds)}</td><td>${usd(e.cost_micros)}</td>`
          + `<td>${e.files > 0 ? `<a href="${encodeURIComponent(e.id)}/">${e.files} files</a>` : ""}${e.video ? ` · <a href="${esc(e.video)}">video</a>` : ""}</td></tr>`).join("");
        </script>
        </body>
        </html>
        """#
}
