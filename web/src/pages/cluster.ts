// Cluster: this node's GPUs (utilisation, memory, temperature, power over the last hour, and the
// job holding each), the host, the queue with reasons for waiting, and alerts.
import { api } from "../api";
import { Curve, LineChart } from "../chart";
import { ago, bytes, card, emptyState, errorBox, h, localTime, replace } from "../dom";
import { PageContext } from "../main";
import { Alert, Gpu, JobList, NodeList, QueuedJob, Sample } from "../types";

const na = (v: number | null | undefined, unit = "", digits = 0) =>
  v === null || v === undefined ? h("span", { class: "na", title: "not available" }, "n/a") : `${v.toFixed(digits)}${unit}`;

const fact = (k: string, v: Node | string) => h("div", null, h("dt", null, k), h("dd", null, v));

function pct(used: number | null | undefined, total: number | null | undefined): number | null {
  return used === null || used === undefined || !total ? null : (100 * used) / total;
}

export function clusterPage(ctx: PageContext): () => void {
  const { main } = ctx;
  let alive = true;
  let timer = 0;
  const charts = new Map<string, LineChart>();
  const status = h("div", { class: "slot" });
  const nodes = card("nodes");
  const host = card("host");
  const gpus = card("gpus");
  const queue = card("queue");
  const alerts = card("alerts");
  replace(main, h("div", { class: "page-head" }, h("h1", null, "Cluster")), status, alerts, nodes, host, gpus, queue);

  function chart(key: string, parent: HTMLElement, title: string, curves: Curve[], yLabel: string): void {
    let c = charts.get(key);
    let el = parent.querySelector<HTMLElement>(`[data-chart="${key}"]`);
    if (!c || !el) {
      c?.destroy();
      el = h("div", { class: "chart small", "data-chart": key });
      parent.append(el);
      c = new LineChart(el, title, 150);
      charts.set(key, c);
    }
    c.draw(curves, "time", 0, yLabel);
  }

  function series(samples: Sample[], pick: (s: Sample) => number | null | undefined): [number, number, number][] {
    const out: [number, number, number][] = [];
    samples.forEach((s, i) => {
      const v = pick(s);
      if (v !== null && v !== undefined) out.push([i, Date.parse(s.time) / 1000, v]);
    });
    return out;
  }

  function drawGpu(g: Gpu, samples: Sample[], holders: Map<number, { id: number; name: string; owner: string }>): HTMLElement {
    const holderId = g.job ?? holders.get(g.index)?.id ?? null;
    const holder = holderId ? holders.get(g.index) : undefined;
    const card = h("div", { class: "gpu", "data-gpu": g.index },
      h("div", { class: "gpu-head" }, h("strong", null, `GPU ${g.index}`), h("span", { class: "muted" }, g.model ?? ""),
        h("div", { class: "spacer" }),
        holderId ? h("a", { href: `#/jobs/${holderId}`, class: "holder" }, `job ${holderId}${holder ? ` · ${holder.name} · ${holder.owner}` : ""}`)
          : h("span", { class: "muted free" }, "free")),
      h("dl", { class: "facts compact" },
        fact("Utilisation", na(g.utilization_pct, " %")),
        fact("Memory", g.memory_used_bytes === null ? na(null) : `${bytes(g.memory_used_bytes)} / ${bytes(g.memory_total_bytes)}`),
        fact("Temperature", na(g.temperature_c, " °C")),
        fact("Power", na(g.power_w, " W", 1)),
        fact("ECC errors", na(g.ecc_errors))));
    const mine = (s: Sample) => s.gpus.find((x) => x.index === g.index);
    const util = series(samples, (s) => mine(s)?.utilization_pct);
    if (util.length > 0) {
      const charts = h("div", { class: "gpu-charts" });
      card.append(charts);
      queueMicrotask(() => {
        chart(`gpu${g.index}-util`, charts, "utilisation / memory %", [
          { label: "util %", points: util },
          { label: "memory %", points: series(samples, (s) => { const x = mine(s); return pct(x?.memory_used_bytes, x?.memory_total_bytes); }) },
        ], "%");
        chart(`gpu${g.index}-temp`, charts, "temperature °C / power W", [
          { label: "°C", points: series(samples, (s) => mine(s)?.temperature_c) },
          { label: "W", points: series(samples, (s) => mine(s)?.power_w) },
        ], "");
      });
    }
    return card;
  }

  function drawNodes(inv: NodeList): void {
    const usage = (used: string, total: string) => (used === "0" ? `— / ${total}` : `${used} / ${total}`);
    replace(nodes, h("h2", null, "Nodes", h("span", { class: "muted small" }, ` ${inv.backend} backend`)),
      inv.nodes.length === 0 ? emptyState("No nodes.", "The backend reports no machines to run on.")
        : h("table", null, h("thead", null, h("tr", null, ["Node", "State", "CPUs used", "Memory used", "GPUs"].map((c) => h("th", null, c)))),
          h("tbody", null, inv.nodes.map((n) => h("tr", { "data-node": n.name }, h("td", null, n.name),
            h("td", null, n.state || "up"), h("td", null, usage(n.cpus_used, n.cpus)),
            h("td", null, usage(n.memory_used, n.memory)),
            h("td", null, n.gpus.length === 0 ? h("span", { class: "muted" }, "none")
              : n.gpus.map((g) => h("span", { class: `gpu-chip ${g.job ? "held" : ""}`, title: g.model },
                `${g.index}:${g.type || "gpu"}`, g.job ? h("a", { href: `#/jobs/${g.job}` }, ` job ${g.job}`) : null))))))),
      inv.gpu_holders_known ? null : h("p", { class: "muted small" },
        "The cluster manager places jobs on these nodes; which job holds which GPU is its own business."));
  }

  async function refresh(): Promise<void> {
    try {
      const [inv, tel, running, q, al] = await Promise.all([
        api<NodeList>("GET", "/api/v1/nodes"),
        api<{ latest: Sample | null; samples: Sample[] }>("GET", "/api/v1/telemetry?since=1h"),
        api<JobList>("GET", "/api/v1/jobs?state=RUNNING,STARTING&limit=500"),
        api<{ jobs: QueuedJob[] }>("GET", "/api/v1/queue"),
        api<{ firing: Alert[]; recent: Alert[] }>("GET", "/api/v1/alerts"),
      ]);
      if (!alive) return;
      status.replaceChildren();
      charts.forEach((c) => c.destroy());
      charts.clear();
      const holders = new Map<number, { id: number; name: string; owner: string }>();
      for (const j of running.jobs) {
        const a = j.attempt_list[j.attempt_list.length - 1];
        for (const g of a?.allocation?.gpus ?? []) holders.set(g, { id: j.id, name: j.name, owner: j.owner });
      }
      drawNodes(inv);
      const latest = tel.latest;
      if (!latest) {
        replace(host, h("h2", null, "Node"), emptyState("No telemetry yet.", "dlabd samples its node every few seconds; this fills in shortly."));
        replace(gpus, h("h2", null, "GPUs"));
      } else {
        const hs = latest.host;
        replace(host, h("h2", null, `Node ${latest.node}`, h("span", { class: "muted small" }, ` sampled ${ago(latest.time)}`)),
          h("dl", { class: "facts" },
            fact("CPU busy", na(hs.cpu_pct, " %")),
            fact("Memory", `${bytes(hs.memory_used_bytes)} / ${bytes(hs.memory_total_bytes)}`),
            fact("Data disk", `${bytes(hs.disk_used_bytes)} / ${bytes(hs.disk_total_bytes)}`)));
        const hostCharts = h("div", { class: "gpu-charts" });
        host.append(hostCharts);
        chart("host-cpu", hostCharts, "CPU / memory %", [
          { label: "CPU %", points: series(tel.samples, (s) => s.host.cpu_pct) },
          { label: "memory %", points: series(tel.samples, (s) => pct(s.host.memory_used_bytes, s.host.memory_total_bytes)) },
        ], "%");
        replace(gpus, h("h2", null, "GPUs"),
          latest.gpu_note ? h("p", { class: "muted" }, latest.gpu_note) : null,
          latest.gpus.length === 0 ? emptyState("No GPUs on this node.", "Jobs run on CPUs here. dlabd finds NVIDIA GPUs through NVML, or takes them from node.gpus in its config.")
            : h("div", { class: "gpu-grid" }, latest.gpus.map((g) => drawGpu(g, tel.samples, holders))));
      }
      replace(queue, h("h2", null, "Queue"), q.jobs.length === 0 ? emptyState("Nothing waits.", "Queued jobs of this tenant appear here with the reason they wait.")
        : h("table", null, h("thead", null, h("tr", null, ["#", "Job", "Name", "Owner", "Priority", "GPUs", "Waits because", "Starts"].map((c) => h("th", null, c)))),
          h("tbody", null, q.jobs.map((j) => h("tr", null, h("td", { class: "num" }, String(j.position)),
            h("td", { class: "num" }, h("a", { href: `#/jobs/${j.id}` }, String(j.id))), h("td", null, j.name), h("td", null, j.owner),
            h("td", { class: "num" }, String(j.priority)), h("td", { class: "num" }, String(j.gpus)),
            h("td", { class: "reason" }, j.reason), h("td", null, j.estimated_start ? localTime(j.estimated_start) : "unknown"))))));
      replace(alerts, h("h2", null, "Alerts"),
        al.firing.length === 0 ? h("p", { class: "ok" }, "No alert is firing.")
          : h("ul", { class: "alerts" }, al.firing.map((a) => h("li", { class: "firing" }, h("strong", null, a.rule), ` ${a.message}`, h("span", { class: "muted" }, ` since ${localTime(a.since)}`)))),
        al.recent.length > 0 ? h("details", null, h("summary", null, `Recent transitions (${al.recent.length})`),
          h("ul", { class: "alerts" }, al.recent.slice().reverse().slice(0, 50).map((a) => h("li", { class: a.state }, `${localTime(a.time)} · ${a.state} · ${a.rule}: ${a.message}`)))) : null);
    } catch (e) {
      if (alive) status.replaceChildren(errorBox((e as Error).message));
    }
    if (alive) timer = window.setTimeout(refresh, 5000);
  }
  void refresh();
  return () => {
    alive = false;
    clearTimeout(timer);
    charts.forEach((c) => c.destroy());
  };
}
