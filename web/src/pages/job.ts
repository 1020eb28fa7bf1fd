// One job: spec, attempts (with the checkpoint each resumed from), events, live logs per task
// with search, live training curves of every reported metric, checkpoints.
import { api, roleAtLeast, stream } from "../api";
import { Curve, LineChart, XAxis } from "../chart";
import { card, duration, emptyState, errorBox, h, localTime, replace, stateBadge } from "../dom";
import { go, PageContext } from "../main";
import { Checkpoint, Job, JobEvent, Series, TERMINAL, jobGpus } from "../types";
import { resubmitJob } from "./jobs";

const MAX_LOG_LINES = 20000;

export function jobPage(ctx: PageContext, id: number): () => void {
  const { main } = ctx;
  let alive = true;
  let job: Job | null = null;
  const timers: number[] = [];
  const closers: (() => void)[] = [];

  const head = h("div", { class: "page-head" });
  const status = h("div", { class: "slot" });
  const summary = h("div", { class: "summary" });
  const curves = card("curves");
  const logs = card("logs");
  const attempts = card("attempts");
  const events = card("events");
  const checkpoints = card("checkpoints");
  const spec = card("spec");
  replace(main, h("p", null, h("a", { href: "#/jobs" }, "← Jobs")), head, status, summary, curves,
    logs, attempts, checkpoints, events, spec);

  // ---------------------------------------------------------------- the job itself
  function drawJob(j: Job): void {
    const canWrite = roleAtLeast(ctx.me, "member");
    const buttons: HTMLElement[] = [];
    if (canWrite && !TERMINAL.has(j.state)) {
      buttons.push(h("button", { class: "danger", id: "cancel-job", disabled: j.cancel_requested,
        onclick: async () => {
          if (!confirm(`Cancel job ${j.id} (${j.name})?`)) return;
          try { drawJob(await api<Job>("POST", `/api/v1/jobs/${j.id}/cancel`)); }
          catch (e) { status.replaceChildren(errorBox((e as Error).message)); }
        } }, j.cancel_requested ? "Cancelling…" : "Cancel"));
    }
    if (canWrite && TERMINAL.has(j.state)) {
      buttons.push(h("button", { id: "resubmit-job", onclick: async () => {
        try { go(`#/jobs/${(await resubmitJob(j)).id}`); }
        catch (e) { status.replaceChildren(errorBox((e as Error).message)); }
      } }, "Resubmit"));
    }
    replace(head, h("h1", null, `Job ${j.id}`, h("span", { class: "job-name" }, j.name)),
      stateBadge(j.state), h("div", { class: "spacer" }), buttons);
    const run = j.start_time
      ? duration(((j.end_time ? Date.parse(j.end_time) : Date.now()) - Date.parse(j.start_time)) / 1000)
      : "";
    const field = (k: string, v: unknown) =>
      h("div", null, h("dt", null, k), h("dd", null, v === "" || v === null || v === undefined ? "—" : String(v)));
    replace(summary, h("dl", { class: "facts" },
      field("Reason", j.reason), field("Owner", j.owner), field("Tenant", j.tenant),
      field("Priority", j.priority), field("GPUs", jobGpus(j)), field("Tasks", j.tasks),
      field("Submitted", localTime(j.submit_time)), field("Started", localTime(j.start_time)),
      field("Ended", localTime(j.end_time)), field("Duration", run), field("Exit code", j.exit_code),
      field("Attempts", j.attempts), field("Snapshot", j.snapshot ? j.snapshot.slice(0, 19) + "…" : ""),
      field("Labels", Object.entries(j.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(", "))));
    replace(attempts, h("h2", null, "Attempts"), j.attempt_list.length === 0
      ? emptyState("No attempt yet.", j.reason || "The job waits in the queue.")
      : h("table", null, h("thead", null, h("tr", null, ["#", "State", "Started", "Ended", "Exit", "Failure",
          "Reason", "Resumed from", "GPUs"].map((c) => h("th", null, c)))),
        h("tbody", null, j.attempt_list.map((a) => h("tr", null,
          h("td", { class: "num" }, String(a.attempt)), h("td", null, stateBadge(a.state)),
          h("td", null, localTime(a.start_time)), h("td", null, localTime(a.end_time)),
          h("td", { class: "num" }, a.exit_code ?? ""), h("td", null, a.failure ?? ""),
          h("td", { class: "reason" }, a.reason),
          h("td", null, a.resumed_from ? `checkpoint ${a.resumed_from.id} (step ${a.resumed_from.step})` : "—"),
          h("td", null, (a.allocation?.gpus ?? []).join(", ") || "—"))))));
    replace(spec, h("h2", null, "Spec"), h("pre", { class: "code" }, JSON.stringify(j.spec, null, 2)));
  }

  async function refreshJob(): Promise<void> {
    try {
      const j = await api<Job>("GET", `/api/v1/jobs/${id}`);
      if (!alive) return;
      const changed = !job || job.state !== j.state || job.attempts !== j.attempts;
      const firstLoad = !job;
      job = j;
      drawJob(j);
      if (firstLoad) startLogs();
      if (changed) {
        void refreshEvents();
        void refreshCheckpoints();
        if (!firstLoad && j.attempts > 0) restartLogsIfNewAttempt();
      }
      void refreshCurves();
      if (!TERMINAL.has(j.state)) timers.push(window.setTimeout(refreshJob, 2000));
    } catch (e) {
      if (!alive) return;
      replace(main, h("p", null, h("a", { href: "#/jobs" }, "← Jobs")), errorBox((e as Error).message));
    }
  }

  async function refreshEvents(): Promise<void> {
    const r = await api<{ events: JobEvent[] }>("GET", `/api/v1/jobs/${id}/events`).catch(() => null);
    if (!r || !alive) return;
    replace(events, h("h2", null, "Events"), h("table", null,
      h("thead", null, h("tr", null, ["Time", "From", "To", "Reason"].map((c) => h("th", null, c)))),
      h("tbody", null, r.events.map((e) => h("tr", null, h("td", null, localTime(e.time)),
        h("td", null, e.from ?? ""), h("td", null, e.to), h("td", { class: "reason" }, e.reason))))));
  }

  async function refreshCheckpoints(): Promise<void> {
    const r = await api<{ checkpoints: Checkpoint[] }>("GET", `/api/v1/jobs/${id}/checkpoints`).catch(() => null);
    if (!r || !alive) return;
    replace(checkpoints, h("h2", null, "Checkpoints"), r.checkpoints.length === 0
      ? emptyState("No checkpoints.", h("span", null, "A job records one with ",
          h("code", null, "dlab.checkpoint(path, step)"), "; a restarted attempt resumes from the latest."))
      : h("table", null, h("thead", null, h("tr", null, ["ID", "Attempt", "Step", "Path", "Metrics", "Time"].map((c) => h("th", null, c)))),
        h("tbody", null, r.checkpoints.map((c) => h("tr", null, h("td", { class: "num" }, String(c.id)),
          h("td", { class: "num" }, String(c.attempt)), h("td", { class: "num" }, String(c.step)),
          h("td", null, h("code", null, c.path)),
          h("td", null, Object.entries(c.metrics).map(([k, v]) => `${k}=${v.toPrecision(4)}`).join(", ")),
          h("td", null, localTime(c.time)))))));
  }

  // ---------------------------------------------------------------- curves
  let xAxis: XAxis = "step";
  let weight = 0.6;
  let series: Series[] = [];
  const charts = new Map<string, LineChart>();
  const chartGrid = h("div", { class: "charts" });
  const xSelect = h("select", { "aria-label": "x axis", onchange: (e: Event) => {
    xAxis = (e.target as HTMLSelectElement).value as XAxis; drawCurves(); } },
    h("option", { value: "step" }, "x: step"), h("option", { value: "time" }, "x: wall time"));
  const smoothLabel = h("span", { class: "muted" }, `smoothing ${weight}`);
  const smoothInput = h("input", { type: "range", min: "0", max: "0.99", step: "0.01", value: String(weight),
    "aria-label": "smoothing", oninput: (e: Event) => {
      weight = Number((e.target as HTMLInputElement).value);
      smoothLabel.textContent = `smoothing ${weight}`;
      drawCurves();
    } });
  replace(curves, h("div", { class: "section-head" }, h("h2", null, "Training curves"), h("div", { class: "spacer" }),
    xSelect, smoothInput, smoothLabel), chartGrid);

  function drawCurves(): void {
    if (series.length === 0) {
      if (chartGrid.querySelector(".empty") === null) {
        replace(chartGrid, emptyState("No metrics reported yet.", h("span", null, "Report them from training with ",
          h("code", null, "dlab.report(step, loss=...)"), " (Python SDK) or TensorBoard scalars; they appear here live.")));
      }
      return;
    }
    chartGrid.querySelector(".empty")?.remove();
    for (const s of series) {
      let chart = charts.get(s.name);
      if (!chart) {
        const el = h("div", { class: "chart", "data-metric": s.name });
        chartGrid.append(el);
        chart = new LineChart(el, s.name);
        charts.set(s.name, chart);
      }
      chart.draw([{ label: s.name, points: s.points } as Curve], xAxis, weight);
    }
  }

  let curvesBusy = false;
  async function refreshCurves(): Promise<void> {
    if (curvesBusy) return;
    curvesBusy = true;
    try {
      const r = await api<{ series: Series[] }>("GET", `/api/v1/jobs/${id}/metrics?max_points=1000`);
      if (!alive) return;
      // The job's own metrics first, dlab's measurements (system/...) after them.
      series = [...r.series].sort((a, b) =>
        Number(a.name.startsWith("system/")) - Number(b.name.startsWith("system/")) ||
        a.name.localeCompare(b.name));
      drawCurves();
    } catch {
      // keep the last curves; the job request reports errors
    } finally {
      curvesBusy = false;
    }
  }

  // ---------------------------------------------------------------- logs
  let lines: string[] = [];
  let task = "";
  let logAttempt = 0;
  let closeLog: () => void = () => {};
  const pre = h("pre", { class: "log", id: "log-view", tabindex: "0" });
  const follow = h("input", { type: "checkbox", id: "log-follow", checked: true });
  const search = h("input", { type: "search", id: "log-search", placeholder: "Search the log" });
  const taskSelect = h("select", { id: "log-task", "aria-label": "Task", onchange: () => {
    task = taskSelect.value; startLogs(); } });
  const logState = h("span", { class: "muted", id: "log-state" });
  search.addEventListener("input", () => drawLog(true));
  replace(logs, h("div", { class: "section-head" }, h("h2", null, "Logs"), h("div", { class: "spacer" }),
    taskSelect, search, h("label", { class: "inline" }, follow, "Follow"), logState), pre);

  function drawLog(full: boolean, fresh: string[] = []): void {
    const q = search.value.trim().toLowerCase();
    const match = (l: string) => !q || l.toLowerCase().includes(q);
    if (full) {
      const shown = lines.filter(match);
      pre.textContent = shown.length ? shown.join("\n") + "\n" : "";
      if (lines.length === 0) pre.textContent = "";
    } else {
      const add = fresh.filter(match);
      if (add.length) pre.append(document.createTextNode(add.join("\n") + "\n"));
    }
    if (follow.checked) pre.scrollTop = pre.scrollHeight;
  }

  function startLogs(): void {
    closeLog();
    if (!job) return;
    const tasks = job.tasks || 1;
    if (taskSelect.options.length !== (tasks > 1 ? tasks + 1 : 1)) {
      replace(taskSelect, h("option", { value: "" }, tasks > 1 ? "All tasks" : "Task 0"),
        tasks > 1 ? Array.from({ length: tasks }, (_, i) => h("option", { value: String(i) }, `Rank ${i}`)) : null);
      taskSelect.value = task;
    }
    lines = [];
    drawLog(true);
    logAttempt = job.attempts;
    if (job.attempts === 0) {
      logState.textContent = "waiting for the first attempt";
      return;
    }
    logState.textContent = `attempt ${job.attempts} · live`;
    const q = new URLSearchParams({ follow: "true", tail: "5000" });
    if (task) q.set("task", task);
    let batch: string[] = [];
    let scheduled = false;
    closeLog = stream(`/api/v1/jobs/${id}/logs?${q}`, {
      onEvent: (event, data) => {
        if (event === "end") {
          logState.textContent = `attempt ${logAttempt} · ended`;
          return;
        }
        batch.push(data);
        if (!scheduled) {
          scheduled = true;
          requestAnimationFrame(() => {
            scheduled = false;
            lines.push(...batch);
            const overflow = lines.length > MAX_LOG_LINES;
            if (overflow) lines = lines.slice(-MAX_LOG_LINES);
            drawLog(overflow, batch);
            batch = [];
          });
        }
      },
      onError: (e) => { logState.textContent = e.message; },
    });
  }

  function restartLogsIfNewAttempt(): void {
    if (job && job.attempts !== logAttempt) startLogs();
  }

  void refreshJob();
  return () => {
    alive = false;
    closeLog();
    closers.forEach((c) => c());
    timers.forEach((t) => clearTimeout(t));
    charts.forEach((c) => c.destroy());
  };
}
