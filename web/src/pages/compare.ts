// Compare: several jobs' curves of one metric on one chart.
import { api } from "../api";
import { Curve, LineChart, XAxis } from "../chart";
import { emptyState, errorBox, h, replace, stateBadge } from "../dom";
import { PageContext } from "../main";
import { JobList, Series } from "../types";

export function comparePage(ctx: PageContext): () => void {
  const { main, params } = ctx;
  let alive = true;
  const ids = new Set((params.get("ids") ?? "").split(",").map(Number).filter((n) => n > 0));
  let metric = params.get("metric") ?? "";
  let xAxis: XAxis = "step";
  let weight = 0.6;
  const byJob = new Map<number, Series[]>();
  let chart: LineChart | null = null;

  const picker = h("div", { class: "card picker" });
  const controls = h("div", { class: "section-head" });
  const chartSlot = h("div", { class: "chart big", id: "compare-chart" });
  const status = h("div", { class: "slot" });
  replace(main, h("div", { class: "page-head" }, h("h1", null, "Compare")), status,
    h("div", { class: "compare" }, picker, h("section", { class: "card grow" }, controls, chartSlot)));

  function updateUrl(): void {
    const q = new URLSearchParams();
    if (ids.size) q.set("ids", [...ids].join(","));
    if (metric) q.set("metric", metric);
    history.replaceState(null, "", `#/compare${q.size ? "?" + q : ""}`);
  }

  function metricNames(): string[] {
    const names = new Set<string>();
    for (const id of ids) for (const s of byJob.get(id) ?? []) names.add(s.name);
    return [...names].sort();
  }

  function draw(): void {
    const names = metricNames();
    if (!names.includes(metric)) metric = names.find((n) => /loss/.test(n)) ?? names[0] ?? "";
    const select = h("select", { id: "compare-metric", "aria-label": "Metric", onchange: (e: Event) => {
      metric = (e.target as HTMLSelectElement).value; updateUrl(); draw(); } },
      names.map((n) => h("option", { value: n, selected: n === metric }, n)));
    const xSelect = h("select", { "aria-label": "x axis", onchange: (e: Event) => {
      xAxis = (e.target as HTMLSelectElement).value as XAxis; draw(); } },
      h("option", { value: "step", selected: xAxis === "step" }, "x: step"),
      h("option", { value: "time", selected: xAxis === "time" }, "x: wall time"));
    const smoothInput = h("input", { type: "range", min: "0", max: "0.99", step: "0.01", value: String(weight),
      "aria-label": "smoothing", onchange: (e: Event) => { weight = Number((e.target as HTMLInputElement).value); draw(); } });
    replace(controls, h("h2", null, metric || "Metric"), h("div", { class: "spacer" }), select, xSelect, smoothInput);
    const curves: Curve[] = [];
    for (const id of ids) {
      const s = (byJob.get(id) ?? []).find((x) => x.name === metric);
      if (s) curves.push({ label: `job ${id}`, points: s.points });
    }
    if (curves.length === 0) {
      chart?.destroy();
      chart = null;
      replace(chartSlot, emptyState(ids.size ? "None of these jobs reported this metric." : "Pick jobs to compare.",
        "Tick jobs on the left; their curves of the chosen metric are drawn on one chart."));
      return;
    }
    if (!chart) {
      chartSlot.replaceChildren();
      chart = new LineChart(chartSlot, "", 380);
    }
    chart.draw(curves, xAxis, weight, metric);
  }

  async function load(id: number): Promise<void> {
    try {
      const r = await api<{ series: Series[] }>("GET", `/api/v1/jobs/${id}/metrics?max_points=2000`);
      byJob.set(id, r.series);
    } catch (e) {
      status.replaceChildren(errorBox(`job ${id}: ${(e as Error).message}`));
    }
  }

  async function init(): Promise<void> {
    const list = await api<JobList>("GET", "/api/v1/jobs?limit=100").catch((e) => {
      status.replaceChildren(errorBox((e as Error).message));
      return { jobs: [], next_cursor: null } as JobList;
    });
    if (!alive) return;
    replace(picker, h("h2", null, "Jobs"), list.jobs.length === 0
      ? emptyState("No jobs yet.", "Jobs that report metrics can be compared here.")
      : h("ul", { class: "pick-list" }, list.jobs.map((j) => h("li", null, h("label", null,
        h("input", { type: "checkbox", checked: ids.has(j.id), "data-job": j.id, onchange: async (e: Event) => {
          if ((e.target as HTMLInputElement).checked) { ids.add(j.id); if (!byJob.has(j.id)) await load(j.id); }
          else ids.delete(j.id);
          updateUrl();
          draw();
        } }), ` ${j.id} `, h("span", { class: "name" }, j.name), stateBadge(j.state))))));
    await Promise.all([...ids].map(load));
    if (alive) draw();
  }
  void init();
  return () => {
    alive = false;
    chart?.destroy();
  };
}
